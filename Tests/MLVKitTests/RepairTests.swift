import MLVBasics
@testable import MLVKit
import MLVModel
import MLVRemote
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A damaged pack index stops the store from opening; repair salvages what still
/// verifies and moves the damaged files aside, deleting nothing.
@Suite("repair: damaged indexes are salvaged and moved aside")
struct RepairTests {
    /// Two datasets in two packs; returns the pack (and index) of `hurt`.
    func twoPacks() throws -> (TestRepository, index: String, pack: String) {
        let t = try TestRepository()
        try t.write("kept", ["k.bin": .random(seed: 1, count: 50_000)])
        try t.write("hurt", ["a.bin": .random(seed: 2, count: 60_000), "b.txt": "b\n", "big.bin": .random(seed: 3, count: 300_000)])
        try t.add("kept", "kept")
        let before = Set(try t.packFiles())
        try t.add("hurt", "hurt")
        let pack = try #require(Set(try t.packFiles()).subtracting(before).first)
        return (t, String(pack.dropLast(5)) + ".idx", pack)
    }

    @Test func aDamagedIndexWithAnIntactPackLosesNothing() throws {
        let (t, index, pack) = try twoPacks()
        let packBytes = try t.read(String(pack.dropFirst(t.directory.count + 1)))
        try patchFile(index, at: PackFormat.indexHeaderSize + 5) { $0 ^ 0x20 }
        expectMLVError({ $0.isDamage }, mentions: [FS.baseName(of: index)]) { try t.reopen() }

        let repo = try Repository.open(searchingFrom: t.directory, tolerateDamage: true)
        #expect(repo.objects.damagedIndexes.count == 1)
        let done = try repo.repair()
        #expect(done.count == 1)
        let salvage = try #require(done.first)
        #expect(salvage.recordsLost == 0 && !salvage.truncated && salvage.recordsSalvaged > 5)
        #expect(salvage.reason.contains("checksum"))
        #expect(salvage.movedTo == [".mlv/damaged/" + FS.baseName(of: index), ".mlv/damaged/" + FS.baseName(of: pack)])
        // Moved, not deleted: the damaged files are there byte for byte.
        #expect(try Scenario.read(t.repository.storePath + "/damaged/" + FS.baseName(of: pack)) == packBytes)
        // Every record survived, in the same order, so the salvaged pack is the original
        // again, under its old name, with a sound index.
        #expect(try Scenario.read(pack) == packBytes)

        let healed = try t.reopen()
        let report = healed.fsck(full: true)
        #expect(report.isClean, "\(report.problems)")
        #expect(report.problems.filter { $0.subject.hasPrefix(".mlv/damaged/") }.count == 2)
        _ = try healed.checkout("hurt", to: t.path("out"))
        #expect(try t.snapshot("out") == t.snapshot("hurt"))
        #expect(try healed.repair().isEmpty, "nothing left to repair")
    }

    @Test func aDamagedIndexAndADamagedRecordSalvageTheRest() throws {
        let (t, index, pack) = try twoPacks()
        let entries = try #require(t.repository.objects.packIndexes.first { $0.packPath == pack }).entries
        let victim = try #require(entries.first { $0.kind == .chunk && $0.storedLength > 1000 })
        try patchFile(pack, at: victim.offset + PackFormat.recordHeaderSize + 500) { ~$0 }
        try truncateFile(index, to: 20)

        let repo = try Repository.open(searchingFrom: t.directory, tolerateDamage: true)
        let salvage = try #require(try repo.repair().first)
        #expect(salvage.recordsLost == 1 && salvage.recordsSalvaged == entries.count - 1)
        let healed = try t.reopen()
        let report = healed.fsck()
        #expect(!report.isClean)
        #expect(report.problems.contains { $0.description.contains(victim.id.hex) }, "\(report.problems)")
        // The other dataset is untouched and reads back.
        _ = try healed.checkout("kept", to: t.path("out"))
        #expect(try t.snapshot("out") == t.snapshot("kept"))
    }

    @Test func aPackCutShortKeepsTheRecordsBeforeTheCut() throws {
        let (t, index, pack) = try twoPacks()
        let count = try #require(t.repository.objects.packIndexes.first { $0.packPath == pack }).count
        let size = Int(try #require(Scenario.lstatOrNil(pack)).st_size)
        try truncateFile(pack, to: size - 100)
        try truncateFile(index, to: 0)
        let salvage = try #require(try Repository.open(searchingFrom: t.directory, tolerateDamage: true).repair().first)
        #expect(salvage.truncated && salvage.recordsSalvaged == count - 1)
    }

    /// An index from a newer mlv is not damage: tolerant open still refuses the store.
    @Test func aNewerIndexIsNotMovedAside() throws {
        let (t, index, _) = try twoPacks()
        try patchFile(index, at: 7) { _ in 9 }
        expectMLVError({ if case .store(.newerFormat) = $0 { true } else { false } }) {
            try Repository.open(searchingFrom: t.directory, tolerateDamage: true)
        }
        #expect(FS.exists(index))
    }

    /// A bit flip in a chunk's bytes in the pack data, behind a sound index.
    func flippedRecord() throws -> (TestRepository, index: String, pack: String, victim: IndexEntry, entries: [IndexEntry]) {
        let (t, index, pack) = try twoPacks()
        let entries = try #require(t.repository.objects.packIndexes.first { $0.packPath == pack }).entries
        let victim = try #require(entries.first { $0.kind == .chunk && $0.storedLength > 1000 })
        try patchFile(pack, at: victim.offset + PackFormat.recordHeaderSize + 500) { ~$0 }
        return (t, index, pack, victim, entries)
    }

    /// The store opens, fsck names the object and reads refuse it; repair copies every
    /// other record into a new pack and moves the pack and its index aside, byte for
    /// byte; a pull from a remote with a good copy brings the object back.
    @Test func aDamagedRecordBehindASoundIndexIsMovedAsideKeepingTheRest() throws {
        let (t, index, pack) = try twoPacks()
        let remote = InMemoryRemote(location: "mem-heal")
        _ = try t.repository.push(to: remote, remoteName: "origin", jobs: 1)
        let entries = try #require(t.repository.objects.packIndexes.first { $0.packPath == pack }).entries
        let victim = try #require(entries.first { $0.kind == .chunk && $0.storedLength > 1000 })
        try patchFile(pack, at: victim.offset + PackFormat.recordHeaderSize + 500) { ~$0 }
        let damagedBytes = try Scenario.read(pack), indexBytes = try Scenario.read(index)

        let repo = try t.reopen()
        let found = repo.fsck(full: true)
        #expect(found.problems.contains { $0.severity == .error && $0.subject == victim.id.hex }, "\(found.problems)")
        expectMLVError({ $0.isDamage }, mentions: [victim.id.hex]) { try repo.checkout("hurt", to: t.path("bad")) }

        let done = try repo.repair()
        #expect(done.count == 1)
        let salvage = try #require(done.first)
        #expect(salvage.name == String(FS.baseName(of: pack).dropFirst(5).prefix(64)))
        #expect(salvage.recordsLost == 1 && salvage.recordsSalvaged == entries.count - 1 && !salvage.truncated)
        #expect(salvage.lostObjects == [victim.id])
        #expect(salvage.movedTo == [".mlv/damaged/" + FS.baseName(of: index), ".mlv/damaged/" + FS.baseName(of: pack)])
        // Moved, not deleted.
        #expect(!FS.exists(pack) && !FS.exists(index))
        #expect(try Scenario.read(t.repository.storePath + "/damaged/" + FS.baseName(of: pack)) == damagedBytes)
        #expect(try Scenario.read(t.repository.storePath + "/damaged/" + FS.baseName(of: index)) == indexBytes)

        // Every sound record reads from the new pack; only the damaged object is missing.
        let healed = try t.reopen()
        for e in entries where e.id != victim.id {
            #expect(throws: Never.self) { _ = try healed.objects.readUnverified(e.id) }
        }
        #expect(healed.objects.locate(victim.id) == nil)
        let after = healed.fsck(full: true)
        #expect(after.problems.filter { $0.severity == .error }.map(\.subject).allSatisfy { $0 == victim.id.hex }, "\(after.problems)")
        #expect(!after.isClean)
        _ = try healed.checkout("kept", to: t.path("out-kept"))
        #expect(try t.snapshot("out-kept") == t.snapshot("kept"))
        #expect(try healed.repair().isEmpty, "nothing left to repair")

        // The remote's good copy heals the store.
        let pulled = try healed.pull(from: remote, remoteName: "origin", jobs: 1)
        #expect(pulled.fetch.objects >= 1 && pulled.conflicts.isEmpty)
        #expect(healed.fsck(full: true).isClean, "\(healed.fsck(full: true).problems)")
        _ = try healed.checkout("hurt", to: t.path("out-hurt"))
        #expect(try t.snapshot("out-hurt") == t.snapshot("hurt"))
    }

    /// A repair that fails after committing the copies (its move fails: the index rename,
    /// or the pack rename after it) leaves duplicates; the next repair finishes the move,
    /// adopting a pack left behind without its index, and deletes nothing.
    @Test(arguments: ["idx", "pack"])
    func aRepairStoppedBeforeTheMoveIsFinishedByTheNext(failingMove: String) throws {
        let (t, index, pack, victim, entries) = try flippedRecord()
        let damagedBytes = try Scenario.read(pack)
        let repo = try t.reopen()
        let target = t.repository.storePath + "/damaged/" + FS.baseName(of: failingMove == "idx" ? index : pack)
        FaultInjection.withHook({ op, path in op == .rename && path == target ? EIO : nil }) {
            expectMLVError({ if case .store(.io) = $0 { true } else { false } }) { try repo.repair() }
        }
        #expect(FS.exists(pack), "the pack stays until its index has moved")
        #expect(FS.exists(index) == (failingMove == "idx"))
        let next = try t.reopen()
        #expect(next.fsck().problems.allSatisfy { $0.severity == .warning || $0.subject == victim.id.hex }, "\(next.fsck().problems)")
        _ = try next.repair()
        #expect(!FS.exists(pack) && !FS.exists(index))
        #expect(try Scenario.read(t.repository.storePath + "/damaged/" + FS.baseName(of: pack)) == damagedBytes)
        let healed = try t.reopen()
        for e in entries where e.id != victim.id {
            #expect(throws: Never.self) { _ = try healed.objects.readUnverified(e.id) }
        }
        _ = try healed.checkout("kept", to: t.path("out-kept"))
        #expect(try t.snapshot("out-kept") == t.snapshot("kept"))
        #expect(try healed.repair().isEmpty)
    }
}
