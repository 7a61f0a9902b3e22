import Dispatch
import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Synchronization
import Testing

@Suite("concurrent adds")
struct ConcurrencyTests {
    /// Runs `bodies` on separate threads, released together where the thread pool gives
    /// them a thread each (the wait is bounded, so a busy pool only serialises them).
    func together<T: Sendable>(_ bodies: [@Sendable () throws -> T]) -> [Result<T, Error>] {
        let ready = Atomic<Int>(0)
        let results = Mutex<[Int: Result<T, Error>]>([:])
        DispatchQueue.concurrentPerform(iterations: bodies.count) { i in
            ready.add(1, ordering: .sequentiallyConsistent)
            let deadline = monotonicMilliseconds() + 2000
            while ready.load(ordering: .sequentiallyConsistent) < bodies.count && monotonicMilliseconds() < deadline {}
            let r = Result { try bodies[i]() }
            results.withLock { $0[i] = r }
        }
        return results.withLock { all in (0..<bodies.count).map { all[$0]! } }
    }

    @Test(arguments: [false, true])
    func twoAddsOfTheSameNameBothGetAVersion(separateHandles: Bool) throws {
        let t = try TestRepository()
        try t.write("one", ["a.bin": .random(seed: 1, count: 300_000), "x.txt": "one\n"])
        try t.write("two", ["a.bin": .random(seed: 2, count: 300_000), "x.txt": "two\n"])
        let repos = separateHandles ? [try t.reopen(), try t.reopen()] : [t.repository, t.repository]
        let paths = [t.path("one"), t.path("two")]
        let results = together((0..<2).map { i in
            { @Sendable in try repos[i].addDataset(AddDatasetRequest(name: "same", path: paths[i])) }
        })
        for case .failure(let e) in results { Issue.record(e) }
        let added = results.compactMap { try? $0.get() }
        #expect(added.filter(\.created).count == added.count)
        #expect(added.count == 2)
        let repo = try t.reopen()
        #expect(try repo.versions(of: "same").map(\.version) == Array(1...added.count))
        #expect(repo.fsck(full: true).isClean)
        for (r, source) in zip(results, ["one", "two"]) {
            guard let v = try? r.get() else { continue }
            #expect(try repo.resolve("same@v\(v.version)").id == v.id)
            _ = try repo.checkout("same@v\(v.version)", to: t.path("out-\(v.version)"))
            #expect(try t.snapshot("out-\(v.version)") == t.snapshot(source))
        }
    }

    @Test func twoAddsOfDifferentNamesSharingChunks() throws {
        let t = try TestRepository()
        // The same big file in both: both writers may store its chunks; neither may lose them.
        try t.write("one", ["big.bin": .random(seed: 3, count: 5 << 20), "x.txt": "one\n"])
        try t.write("two", ["big.bin": .random(seed: 3, count: 5 << 20), "y.txt": "two\n"])
        let repos = [try t.reopen(), try t.reopen()]
        let names = ["left", "right"], paths = [t.path("one"), t.path("two")]
        let results = together((0..<2).map { i in
            { @Sendable in try repos[i].addDataset(AddDatasetRequest(name: names[i], path: paths[i])) }
        })
        for r in results { #expect(try r.get().version == 1) }
        let repo = try t.reopen()
        #expect(repo.fsck(full: true).isClean)
        _ = try repo.checkout("left", to: t.path("l"))
        _ = try repo.checkout("right", to: t.path("r"))
        #expect(try t.snapshot("l") == t.snapshot("one"))
        #expect(try t.snapshot("r") == t.snapshot("two"))
    }

    /// What happens between two processes, in one: handle B is opened, then handle A
    /// adds a version (a new pack and a ref). B must be able to read what the ref names.
    @Test func aHandleOpenedEarlierSeesVersionsAddedSince() throws {
        let t = try TestRepository()
        try t.write("one", ["a.txt": "one\n"])
        try t.write("two", ["a.txt": "two\n"])
        let early = try t.reopen()
        let added = try t.add("d", "one")
        #expect(try early.resolve("d").id == added.id)
        _ = try early.datasetManifest(added.id)
        #expect(try early.addDataset(AddDatasetRequest(name: "d", path: t.path("two"))).version == 2)
    }
}
