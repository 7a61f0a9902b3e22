import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A copy of a prepared store, for one round of a fault loop.
final class StoreCopy {
    let directory: String

    init(of source: String) throws {
        directory = try Scenario.makeDirectory(prefix: "mlv-fault", inMemory: true)
        let r = try runProgram("/bin/cp", ["-a", source + "/.", directory], in: directory)
        if r.status != 0 { throw MLVError.invalidArgument("cp failed: \(r)") }
    }

    deinit { Scenario.removeTree(directory) }

    func open() throws -> Repository { try Repository.open(searchingFrom: directory) }
}

/// Runs `operation` on a fresh copy of `template` with the n-th file-system call inside
/// that copy (of one of `operations`) failing with `code` (with `fromThenOn`, that call
/// and every later one: a disk that stays full or a device that stays broken), for
/// n = 1, 2, ... (every `stride`-th n) until the operation completes with no fault
/// injected. After each failure `check` looks at the copy without faults.
/// - Returns: how many rounds had a fault injected.
func faultLoop(template: String, code: Int32, operations: Set<FSOperation> = Set(FSOperation.allCases), fromThenOn: Bool = false,
               stride: Int = 1, limit: Int = 2000,
               _ operation: (Repository) throws -> Void,
               check: (_ round: Int, _ copy: StoreCopy, _ error: Error) throws -> Void) throws -> Int {
    var n = 1, rounds = 0
    while n < limit {
        let copy = try StoreCopy(of: template)
        let repo = try copy.open()
        let seen = AtomicCounter(), fired = AtomicCounter()
        let step = n, inside = copy.directory + "/"
        var thrown: Error?
        FaultInjection.withHook({ op, path in
            guard operations.contains(op), path.hasPrefix(inside) else { return nil }
            let call = seen.add(1)
            guard call == step || (fromThenOn && call > step) else { return nil }
            fired.add(1)
            return code
        }) {
            do { try operation(repo) } catch { thrown = error }
        }
        if fired.current == 0 {
            if let thrown { Issue.record("round \(n): no fault injected, yet it failed: \(thrown)") }
            return rounds
        }
        rounds += 1
        // No error: the fault hit a step whose failure is tolerated (a derived cache); it
        // must still have done its work, which the next round's copy does not see.
        if let thrown { try check(n, copy, thrown) }
        n += stride
    }
    Issue.record("the operation never completed in \(limit) rounds")
    return limit
}

/// Every ref of the store as "path id", the path relative to the store.
func relativeRefs(_ repo: Repository) throws -> [String] {
    try repo.refs.allRefs().map { ref in
        let path = String(ref.path.dropFirst(repo.storePath.count))
        switch ref.id {
        case .success(let id): return path + " " + id.hex
        case .failure(let e): return path + " " + e.description
        }
    }
}

/// Whether the long versions of the loops run (`MLV_LONG_TESTS=1`): every call failed in
/// turn where the short version takes every few.
let longFaultLoops = getenv("MLV_LONG_TESTS").map { String(cString: $0) == "1" } ?? false

/// The calls that can run out of space: ENOSPC is injected only into these, EIO into all.
func failable(_ code: Int32) -> Set<FSOperation> {
    code == ENOSPC ? [.write, .fsync, .rename, .link, .mkdir, .fsyncDirectory] : Set(FSOperation.allCases)
}

@Suite("fault loops: add, promote and gc fail at each file-system call in turn")
struct FaultLoopTests {
    /// A store with `mnist@v1` and `digits` v1..v3, v1 in production.
    static let registryTemplate: Result<TestRepository, Error> = Result {
        let t = try registryRepository()
        try t.repository.promote("digits@v1", to: "production", message: "first")
        return t
    }

    @Test(arguments: [EIO, ENOSPC], [false, true])
    func promote(code: Int32, fromThenOn: Bool) throws {
        let stride = fromThenOn && !longFaultLoops ? 3 : 1
        let template = try Self.registryTemplate.get()
        let oldHead = try #require(try template.repository.registryHead(model: "digits"))
        let failures = try faultLoop(template: template.directory, code: code, operations: failable(code), fromThenOn: fromThenOn,
                                     stride: stride, { repo in
            try repo.promote("digits@v2", to: "production", message: "second")
        }, check: { round, copy, error in
            let repo = try copy.open()
            #expect(repo.fsck().isClean, "round \(round): \(repo.fsck().problems)")
            #expect(try repo.lockFiles().isEmpty, "round \(round): a lock was left behind")
            // The head is wholly old or wholly new.
            let head = try #require(try repo.registryHead(model: "digits"))
            if head.id == oldHead.id {
                #expect(try repo.resolve("digits@production").version == 1)
                try repo.promote("digits@v2", to: "production", message: "second, again")
            } else {
                #expect(head.event.seq == 2 && head.event.previous == oldHead.id, "round \(round)")
                #expect(head.event.state.stages["production"]?.map(\.version) == [2], "round \(round)")
            }
            #expect(try repo.resolve("digits@production").version == 2)
            #expect(try repo.verifyChain(model: "digits").isIntact, "round \(round)")
            #expect(try repo.history(model: "digits").count == 2)
            #expect(repo.fsck(full: true).isClean, "round \(round): committed data")
            #expect(error is MLVError, "round \(round): \(error)")
        })
        #expect(failures * stride >= (code == ENOSPC ? 8 : 15), "only \(failures) rounds, every \(stride)th call")
    }

    /// A store with `d@v1` and, beside it, `next`: the content of the add that fails.
    static let addTemplate: Result<TestRepository, Error> = Result {
        let t = try TestRepository()
        try t.write("first", ["a.bin": .random(seed: 7, count: 100_000), "x.txt": "one\n"])
        try t.write("next", ["a.bin": .random(seed: 8, count: 100_000), "x.txt": "two\n", "sub/y.txt": "y\n"])
        try t.add("d", "first")
        return t
    }

    /// The whole `add` (scan, pack commit, version link, stat cache), not only the pack
    /// commit the store-level loop covers.
    @Test(arguments: [EIO, ENOSPC], [false, true])
    func add(code: Int32, fromThenOn: Bool) throws {
        let stride = fromThenOn && !longFaultLoops ? 3 : 1
        let template = try Self.addTemplate.get()
        let failures = try faultLoop(template: template.directory, code: code, operations: failable(code), fromThenOn: fromThenOn,
                                     stride: stride, { repo in
            _ = try repo.addDataset(AddDatasetRequest(name: "d", path: repo.root + "/next"))
        }, check: { round, copy, error in
            let repo = try copy.open()
            #expect(repo.fsck(full: true).isClean, "round \(round): \(repo.fsck().problems)")
            let versions = try repo.versions(of: "d")
            #expect(versions.count == 1 || versions.count == 2, "round \(round): \(versions.count) versions")
            _ = try repo.checkout("d@v1", to: copy.directory + "/out-v1")
            #expect(try Scenario.snapshot(copy.directory + "/out-v1") == Scenario.snapshot(copy.directory + "/first"))
            // The add works when run again, and makes exactly one new version in all.
            _ = try repo.addDataset(AddDatasetRequest(name: "d", path: copy.directory + "/next"))
            #expect(try repo.versions(of: "d").count == 2, "round \(round)")
            _ = try repo.checkout("d", to: copy.directory + "/out")
            #expect(try Scenario.snapshot(copy.directory + "/out") == Scenario.snapshot(copy.directory + "/next"))
            #expect(error is MLVError, "round \(round): \(error)")
        })
        #expect(failures * stride >= (code == ENOSPC ? 8 : 15), "only \(failures) rounds, every \(stride)th call")
    }

    /// A store with garbage for gc: a pack nothing reaches and a pack half of which is live.
    static let gcTemplate: Result<TestRepository, Error> = Result {
        let t = try TestRepository()
        try t.write("keep", ["a.bin": .random(seed: 1, count: 120_000), "b.txt": "b\n"])
        try t.write("half", ["c.bin": .random(seed: 2, count: 120_000)])
        try t.write("junk", ["d.bin": .random(seed: 3, count: 120_000)])
        try t.add("keep", "keep")
        try t.add("x", "half")
        try t.add("y", "half")
        try t.add("junk", "junk")
        Scenario.removeTree(t.repository.storePath + "/refs/dataset/x")
        Scenario.removeTree(t.repository.storePath + "/refs/dataset/junk")
        return t
    }

    @Test(arguments: [EIO, ENOSPC], [false, true])
    func gc(code: Int32, fromThenOn: Bool) throws {
        let stride = fromThenOn && !longFaultLoops ? 3 : 1
        let template = try Self.gcTemplate.get()
        let refsBefore = try relativeRefs(template.repository)
        let failures = try faultLoop(template: template.directory, code: code, operations: failable(code), fromThenOn: fromThenOn,
                                     stride: stride, { repo in
            _ = try repo.gc(graceSeconds: 0, dryRun: false)
        }, check: { round, copy, _ in
            let repo = try copy.open()
            let report = repo.fsck(full: true)
            #expect(report.isClean, "round \(round): \(report.problems)")
            #expect(try relativeRefs(repo) == refsBefore, "round \(round): gc changed a ref")
            _ = try repo.checkout("keep", to: copy.directory + "/out-keep")
            _ = try repo.checkout("y", to: copy.directory + "/out-y")
            #expect(try Scenario.snapshot(copy.directory + "/out-keep") == Scenario.snapshot(copy.directory + "/keep"))
            #expect(try Scenario.snapshot(copy.directory + "/out-y") == Scenario.snapshot(copy.directory + "/half"))
            // gc without faults finishes the job.
            do { _ = try repo.gc(graceSeconds: 0, dryRun: false) } catch {
                Issue.record("round \(round): \(error)\n\(try Scenario.names(in: repo.storePath + "/packs"))\n\(repo.fsck().problems)\n\(try repo.objects.packNames())")
            }
            do { #expect(try repo.gc(graceSeconds: 0, dryRun: true).objectsRemoved == 0, "round \(round)") } catch {
                Issue.record("dry round \(round): \(error)\n\(try Scenario.names(in: repo.storePath + "/packs"))\n\(repo.objects.packIndexes.map(\.name))")
            }
            #expect(repo.fsck(full: true).isClean)
        })
        #expect(failures * stride >= (code == ENOSPC ? 8 : 15), "only \(failures) rounds, every \(stride)th call")
    }
}
