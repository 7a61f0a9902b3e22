import Dispatch
import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Makes every pack and index of the store look `days` old (utimensat), as if the add
/// that wrote them had started long ago.
func backdatePacks(_ t: TestRepository, days: Int64) throws {
    let packs = t.repository.storePath + "/packs"
    let then = Int64(time(nil)) - days * 86400
    for name in try Scenario.names(in: packs) {
        try Scenario.setModificationTime(packs + "/" + name, seconds: then)
    }
}

/// gc against an add that has committed its packs but not yet created its ref: the two
/// protections, each shown to be the one that matters by taking the other away.
@Suite("gc racing add", .serialized)
struct GCRaceTests {
    static let twoWeeks: Int64 = 14 * 86400

    /// Without the writer's flock (a file system where flock does not work), only the
    /// grace period protects an in-flight add's objects: a fresh unreferenced pack is
    /// kept, and the same pack back-dated past the grace period is removed.
    @Test func theGracePeriodKeepsAFreshUnreferencedPack() throws {
        let t = try TestRepository()
        try t.write("data", ["a.bin": .random(seed: 1, count: 100_000)])
        try t.add("d", "data")
        // What an add has stored when it is between committing its packs and creating its ref.
        let writer = t.repository.objects.writer()
        let pending = splitmix64Bytes(seed: 2, count: 50_000)
        try writer.put(SHA256.hash(pending), kind: .chunk, bytes: pending, compression: .never)
        try writer.commit()
        let packs = try t.packFiles()

        let kept = try t.repository.gc(graceSeconds: Self.twoWeeks, dryRun: false)
        #expect(kept.keptForGrace == 1 && kept.objectsRemoved == 0)
        #expect(try t.packFiles() == packs)
        #expect(t.repository.objects.contains(SHA256.hash(pending)))

        try backdatePacks(t, days: 30)
        let removed = try t.repository.gc(graceSeconds: Self.twoWeeks, dryRun: false)
        #expect(removed.objectsRemoved == 1, "past the grace period, nothing else protects it")
        #expect(!t.repository.objects.contains(SHA256.hash(pending)))
        #expect(t.repository.fsck(full: true).isClean)
    }

    /// With its packs back-dated past the grace period, an add paused between committing
    /// its packs and linking its version ref is protected by its shared flock alone: gc
    /// (exclusive) waits for it, then finds the objects referenced and keeps them.
    @Test func theWritersFlockHoldsGCOffAnAddInFlight() throws {
        let t = try TestRepository()
        try t.write("data", ["a.bin": .random(seed: 3, count: 300_000), "b.txt": "b\n"])
        let refs = t.repository.storePath + "/refs/"
        let adder = try t.reopen(), collector = try t.reopen()
        let atLink = DispatchSemaphore(value: 0), resume = DispatchSemaphore(value: 0)
        let linksSeen = AtomicCounter(), gcDone = AtomicCounter()
        let addResult = Mutex<Result<AddDatasetResult, Error>?>(nil)
        let gcResult = Mutex<Result<GCReport, Error>?>(nil)
        let path = t.path("data")

        try FaultInjection.withHook({ op, p in
            // The add's version link: its packs are committed, its ref is not there yet.
            if op == .link, p.hasPrefix(refs), linksSeen.add(1) == 1 {
                atLink.signal()
                resume.wait()
            }
            return nil
        }) {
            let addThread = startThread {
                let r = Result { try adder.addDataset(AddDatasetRequest(name: "d", path: path)) }
                addResult.withLock { $0 = r }
            }
            atLink.wait()
            try backdatePacks(t, days: 30)
            let gcThread = startThread {
                let r = Result { try collector.gc(graceSeconds: Self.twoWeeks, dryRun: false) }
                gcResult.withLock { $0 = r }
                gcDone.add(1)
            }
            usleep(300_000)
            #expect(gcDone.current == 0, "gc ran while an add held the store's shared lock")
            resume.signal()
            pthread_join(addThread, nil)
            pthread_join(gcThread, nil)
        }
        let added = try #require(try addResult.withLock { $0 }?.get())
        let report = try #require(try gcResult.withLock { $0 }?.get())
        #expect(report.objectsRemoved == 0, "\(report)")
        let repo = try t.reopen()
        #expect(repo.fsck(full: true).isClean)
        #expect(try repo.resolve("d").id == added.id)
        _ = try repo.checkout("d", to: t.path("out"))
        #expect(try t.snapshot("out") == t.snapshot("data"))
    }

    /// A writer opened before a gc (as `mlv add` is while it waits for the lock gc holds)
    /// reads the pack list again once it holds its lock. With the list from its open, its
    /// dedup check found the objects of a pack gc had just deleted, skipped storing them,
    /// and committed a version whose objects were gone.
    @Test func aWriterOpenedBeforeGCReadsThePacksAgainUnderItsLock() throws {
        let t = try TestRepository()
        try t.write("data", ["a.bin": .random(seed: 5, count: 200_000), "b.txt": "b\n"])
        try t.add("junk", "data")
        let opened = try t.reopen()
        Scenario.removeTree(t.repository.storePath + "/refs/dataset/junk")
        let report = try t.repository.gc(graceSeconds: 0, dryRun: false)
        #expect(report.objectsRemoved > 0 && report.packsRemoved.count == 1, "\(report)")

        let added = try t.add("again", "data", on: opened)
        #expect(added.created && added.newBytesStored > 0, "the add stored the content again: \(added)")
        let repo = try t.reopen()
        let check = repo.fsck(full: true)
        #expect(check.isClean, "\(check.problems)")
        _ = try repo.checkout("again", to: t.path("out"))
        #expect(try t.snapshot("out") == t.snapshot("data"))
    }
}
