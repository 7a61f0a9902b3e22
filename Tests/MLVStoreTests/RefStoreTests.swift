import MLVBasics
import MLVTestSupport
import Testing

@testable import MLVStore

#if canImport(Glibc)
import Glibc
#endif

/// A ref store under `refs/` in a fresh temporary directory.
private final class RefFixture {
    let directory: TemporaryDirectory
    let refs: RefStore

    init() throws {
        directory = try TemporaryDirectory(prefix: "mlv-refs")
        refs = RefStore(root: directory.appending("refs"))
    }

    func path(_ relative: String) -> String { refs.root + "/" + relative }

    /// Writes a ref file by hand, creating its directory.
    func write(_ relative: String, _ text: String) throws {
        try FS.makeDirectories(FS.parent(of: path(relative)))
        try PackDamage.writeFile(path(relative), Array(text.utf8))
    }
}

private func id(_ n: Int) -> ObjectID { SHA256.hash(Array("object \(n)".utf8)) }

@Suite("RefStore")
struct RefStoreTests {
    // MARK: versions

    @Test("versions are numbered 1, 2, 3 and never rewritten")
    func versionsAreCreateOnly() throws {
        let f = try RefFixture()
        #expect(try f.refs.versions(kind: "dataset", name: "mnist").isEmpty)
        for n in 1...3 {
            #expect(try f.refs.createNextVersion(kind: "dataset", name: "mnist", id: id(n)) == n)
        }
        let listed = try f.refs.versions(kind: "dataset", name: "mnist")
        #expect(listed.map(\.number) == [1, 2, 3])
        #expect(listed.map(\.id) == [id(1), id(2), id(3)])
        #expect(try f.refs.version(kind: "dataset", name: "mnist", number: 2) == id(2))
        #expect(try f.refs.version(kind: "dataset", name: "mnist", number: 4) == nil)
        #expect(try FS.readFile(f.path("dataset/mnist/versions/1")) == Array((id(1).hex + "\n").utf8))
        #expect(try FS.listDirectory(f.path("dataset/mnist/versions")).map(\.name).sorted() == ["1", "2", "3"],
                "no temp files are left beside the versions")

        // Someone else took 4: the next version is 5 and 4 is left as it was.
        try f.write("dataset/mnist/versions/4", id(40).hex + "\n")
        #expect(try f.refs.createNextVersion(kind: "dataset", name: "mnist", id: id(5)) == 5)
        #expect(try f.refs.version(kind: "dataset", name: "mnist", number: 4) == id(40))

        // Each name counts on its own.
        #expect(try f.refs.createNextVersion(kind: "dataset", name: "cifar", id: id(9)) == 1)
        #expect(try f.refs.names(kind: "dataset") == ["cifar", "mnist"])
        #expect(try f.refs.names(kind: "model") == [])
    }

    @Test("eight threads racing for the next version get distinct numbers")
    func racingVersions() throws {
        let f = try RefFixture()
        let created = Locked<[(number: Int, id: ObjectID)]>([])
        let failures = Locked<[String]>([])
        Parallel.workers(8) { worker in
            for i in 0..<5 {
                let target = id(worker * 100 + i)
                do {
                    let n = try f.refs.createNextVersion(kind: "dataset", name: "race", id: target)
                    created.withLock { $0.append((n, target)) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 } == [])
        let numbers = created.withLock { $0.map(\.number) }.sorted()
        #expect(numbers == Array(1...40))
        let stored = try f.refs.versions(kind: "dataset", name: "race")
        let expected = created.withLock { $0 }.sorted { $0.number < $1.number }
        #expect(stored.map(\.number) == expected.map(\.number))
        #expect(stored.map(\.id) == expected.map(\.id), "each version holds what its creator wrote")
    }

    // MARK: aliases

    @Test("an alias moves only from the expected value")
    func aliasCompareAndSwap() throws {
        let f = try RefFixture()
        let refs = f.refs
        #expect(try refs.alias(kind: "model", name: "fraud", alias: "production") == nil)
        try refs.updateAlias(kind: "model", name: "fraud", alias: "production", expected: nil, new: id(1))
        #expect(try refs.alias(kind: "model", name: "fraud", alias: "production") == id(1))

        // Creating again, expecting it unset, loses.
        let created = storeError {
            try refs.updateAlias(kind: "model", name: "fraud", alias: "production", expected: nil, new: id(2))
        }
        guard case .refChanged(let ref, let expected, let found)? = created else {
            Issue.record("expected refChanged, got \(String(describing: created))")
            return
        }
        #expect(ref == "fraud@production")
        #expect(expected == "unset")
        #expect(found == id(1).short)
        #expect("\(created!)".contains("fraud@production"))

        try refs.updateAlias(kind: "model", name: "fraud", alias: "production", expected: id(1), new: id(2))
        #expect(try refs.alias(kind: "model", name: "fraud", alias: "production") == id(2))

        // A stale expectation loses and changes nothing.
        let stale = storeError {
            try refs.updateAlias(kind: "model", name: "fraud", alias: "production", expected: id(1), new: id(3))
        }
        guard case .refChanged(let staleRef, let staleExpected, let staleFound)? = stale else {
            Issue.record("expected refChanged, got \(String(describing: stale))")
            return
        }
        #expect(staleRef == "fraud@production")
        #expect(staleExpected == id(1).short)
        #expect(staleFound == id(2).short)
        #expect(try refs.alias(kind: "model", name: "fraud", alias: "production") == id(2))

        try refs.updateAlias(kind: "model", name: "fraud", alias: "staging", expected: nil, new: id(4))
        #expect(try refs.aliases(kind: "model", name: "fraud") == ["production": id(2), "staging": id(4)])

        // Deleting needs the expected value too.
        try refs.updateAlias(kind: "model", name: "fraud", alias: "production", expected: id(2), new: nil)
        #expect(try refs.alias(kind: "model", name: "fraud", alias: "production") == nil)
        #expect(try refs.aliases(kind: "model", name: "fraud") == ["staging": id(4)])
        #expect(try FS.listDirectory(f.path("model/fraud/aliases")).map(\.name) == ["staging"],
                "no lock or temp file is left behind")
    }

    @Test("of eight threads moving an alias from the same value, exactly one wins")
    func racingAliasUpdates() throws {
        let f = try RefFixture()
        try f.refs.updateAlias(kind: "model", name: "fraud", alias: "production", expected: nil, new: id(0))
        let winners = Locked<[ObjectID]>([])
        let others = Locked<[String]>([])
        Parallel.workers(8) { worker in
            do {
                try f.refs.updateAlias(kind: "model", name: "fraud", alias: "production", expected: id(0), new: id(worker + 1))
                winners.withLock { $0.append(id(worker + 1)) }
            } catch StoreError.refChanged {
            } catch {
                others.withLock { $0.append("\(error)") }
            }
        }
        #expect(others.withLock { $0 } == [])
        let won = winners.withLock { $0 }
        #expect(won.count == 1)
        #expect(try f.refs.alias(kind: "model", name: "fraud", alias: "production") == won.first)
    }

    @Test("a lock held by someone else is reported with its owner and left in place")
    func heldLock() throws {
        let f = try RefFixture()
        try f.refs.updateAlias(kind: "model", name: "fraud", alias: "production", expected: nil, new: id(1))
        let lock = f.path("model/fraud/aliases/production.lock")
        try f.write("model/fraud/aliases/production.lock", "4242 build-host \(time(nil) - 90)\n")
        // LockFile.acquire keeps retrying for its 5 s default before giving up.
        let error = storeError {
            try f.refs.updateAlias(kind: "model", name: "fraud", alias: "production", expected: id(1), new: id(2))
        }
        guard case .locked(let message)? = error else {
            Issue.record("expected locked, got \(String(describing: error))")
            return
        }
        #expect(message.contains(lock))
        #expect(message.contains("pid 4242"))
        #expect(message.contains("build-host"))
        #expect(message.contains("s ago"))
        #expect(FS.exists(lock), "a lock is never broken silently")
        #expect(try f.refs.alias(kind: "model", name: "fraud", alias: "production") == id(1))
    }

    // MARK: damaged refs

    static let damagedContents: [String] = [
        "",
        "garbage\n",
        String(repeating: "0", count: 64),
        String(repeating: "0", count: 63) + "\n",
        String(repeating: "0", count: 64) + "\n\n",
        " " + String(repeating: "0", count: 64) + "\n",
        String(repeating: "g", count: 64) + "\n",
    ]

    @Test("a damaged ref file is badRef naming its path", arguments: damagedContents)
    func damagedRef(_ content: String) throws {
        let f = try RefFixture()
        try f.write("dataset/mnist/versions/1", content)
        try f.write("dataset/mnist/aliases/latest", content)
        let versionPath = f.path("dataset/mnist/versions/1")
        let aliasPath = f.path("dataset/mnist/aliases/latest")
        let attempts: [(String, () throws -> Void)] = [
            (versionPath, { _ = try f.refs.version(kind: "dataset", name: "mnist", number: 1) }),
            (versionPath, { _ = try f.refs.versions(kind: "dataset", name: "mnist") }),
            (aliasPath, { _ = try f.refs.alias(kind: "dataset", name: "mnist", alias: "latest") }),
            (aliasPath, { _ = try f.refs.aliases(kind: "dataset", name: "mnist") }),
            // A compare-and-swap cannot start from a value it cannot read.
            (aliasPath, { try f.refs.updateAlias(kind: "dataset", name: "mnist", alias: "latest", expected: nil, new: id(1)) }),
        ]
        for (path, attempt) in attempts {
            let error = storeError { try attempt() }
            guard case .badRef(let badPath, let reason)? = error else {
                Issue.record("expected badRef, got \(String(describing: error))")
                continue
            }
            #expect(badPath == path)
            #expect("\(error!)".contains(path))
            #expect(reason == (content.isEmpty ? "empty file" : "does not hold an object id"))
        }
        #expect(!FS.exists(aliasPath + ".lock"))
    }

    @Test("allRefs lists every ref, damaged ones as failures, and skips locks and temp files")
    func allRefsReportsDamage() throws {
        let f = try RefFixture()
        #expect(try f.refs.allRefs().isEmpty)
        _ = try f.refs.createNextVersion(kind: "dataset", name: "mnist", id: id(1))
        try f.write("dataset/mnist/versions/2", "not an id\n")
        try f.refs.updateAlias(kind: "dataset", name: "mnist", alias: "latest", expected: nil, new: id(1))
        try f.write("dataset/mnist/aliases/staging", "")
        try f.write("dataset/mnist/aliases/production.lock", "1 host 0\n")
        try f.write("dataset/mnist/aliases/.latest.tmp-1-1", "half written")
        _ = try f.refs.createNextVersion(kind: "model", name: "fraud", id: id(2))

        let all = try f.refs.allRefs()
        #expect(all.map(\.path) == [
            f.path("dataset/mnist/aliases/latest"),
            f.path("dataset/mnist/aliases/staging"),
            f.path("dataset/mnist/versions/1"),
            f.path("dataset/mnist/versions/2"),
            f.path("model/fraud/versions/1"),
        ])
        for (path, result) in all {
            switch (FS.baseName(of: path), result) {
            case ("latest", .success(let target)), ("1", .success(let target)):
                #expect(target == (path.contains("model") ? id(2) : id(1)))
            case ("staging", .failure(.badRef(let badPath, _))), ("2", .failure(.badRef(let badPath, _))):
                #expect(badPath == path)
            default:
                Issue.record("unexpected \(path): \(result)")
            }
        }
    }
}

extension InjectedFaultTests {
    @Test("a version number taken between listing and creating is skipped, never overwritten")
    func versionTakenMidway() throws {
        let f = try RefFixture()
        #expect(try f.refs.createNextVersion(kind: "dataset", name: "mnist", id: id(1)) == 1)
        let versions = f.path("dataset/mnist/versions")
        let intruder = id(99)
        let opened = AtomicCounter()
        // Another writer creates version 2 just as this one opens its temp file.
        let number = try FaultInjection.withHook({ op, path in
            if op == .open, FS.parent(of: path) == versions, opened.add(1) == 1 {
                try? PackDamage.writeFile(versions + "/2", Array((intruder.hex + "\n").utf8))
            }
            return nil
        }) {
            try f.refs.createNextVersion(kind: "dataset", name: "mnist", id: id(2))
        }
        #expect(opened.current >= 1)
        #expect(number == 3)
        #expect(try f.refs.version(kind: "dataset", name: "mnist", number: 2) == intruder)
        #expect(try f.refs.version(kind: "dataset", name: "mnist", number: 3) == id(2))
    }
}
