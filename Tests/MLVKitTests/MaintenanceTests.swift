import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("damage: fsck names it, checkout aborts before touching the target")
struct DamageTests {
    /// A store whose one version holds a single-chunk file of random bytes (stored raw).
    func storeWithAChunk() throws -> (TestRepository, IndexEntry, String) {
        let t = try TestRepository()
        try t.write("data", ["a.bin": .random(seed: 11, count: 40_000), "b.txt": "b\n"])
        try t.add("d", "data")
        let id = SHA256.hash(splitmix64Bytes(seed: 11, count: 40_000))
        let record = try #require(packRecords(t.repository, kind: .chunk).first { $0.entry.id == id })
        #expect(!record.entry.isCompressed)
        return (t, record.entry, record.pack)
    }

    @Test func flippedByteInAChunk() throws {
        let (t, entry, pack) = try storeWithAChunk()
        try patchFile(pack, at: entry.offset + PackFormat.recordHeaderSize + entry.storedLength / 2) { $0 ^ 0x40 }

        for target in ["absent", "present"] {
            if target == "present" { try t.write("present/mine.txt", "mine\n") }
            let before = try t.snapshot(target)
            let parentBefore = try Scenario.names(in: t.directory)
            expectMLVError({ $0.isDamage }, mentions: [entry.id.hex, "damaged"]) {
                _ = try t.repository.checkout("d", to: t.path(target))
            }
            #expect(try t.snapshot(target) == before)
            #expect(try Scenario.names(in: t.directory) == parentBefore, "no staging directory is left behind")
            if let present = before { #expect(present.count == 1) }
        }

        let full = t.repository.fsck(full: true)
        #expect(!full.isClean)
        #expect(full.problems.contains { $0.subject == entry.id.hex || $0.message.contains(entry.id.hex) })
        #expect(full.problems.contains { $0.subject.hasSuffix(".pack") && $0.message.contains("checksum") })
        // Plain fsck does not re-read chunks; it may or may not notice. It must not crash.
        _ = t.repository.fsck()
        // gc must not make things worse: it refuses or keeps the damaged object's pack.
        _ = try? t.repository.gc(graceSeconds: 0, dryRun: false)
        #expect(!t.repository.fsck(full: true).isClean)
    }

    @Test func flippedByteInTheMiddleOfAMultiChunkBlob() throws {
        let t = try TestRepository()
        let data = splitmix64Bytes(seed: 12, count: 600_000)
        try t.write("data/big.bin", .file(data, mode: 0o644))
        try t.add("d", "data")
        let chunks = packRecords(t.repository, kind: .chunk)
        #expect(chunks.count > 2)
        let (pack, entry) = chunks[chunks.count / 2]
        try patchFile(pack, at: entry.offset + PackFormat.recordHeaderSize + 7) { ~$0 }
        expectMLVError({ $0.isDamage }, mentions: [entry.id.hex]) {
            _ = try t.repository.checkout("d", to: t.path("out"))
        }
        #expect(Scenario.lstatOrNil(t.path("out")) == nil)
        let report = t.repository.fsck(full: true)
        #expect(report.problems.contains { $0.description.contains(entry.id.hex) })
    }

    @Test func truncatedPackFile() throws {
        let (t, _, pack) = try storeWithAChunk()
        let size = Int(try #require(Scenario.lstatOrNil(pack)).st_size)
        try truncateFile(pack, to: size - 10)
        // The manifest is the last record of the pack, so even plain fsck reads a cut record.
        for full in [false, true] {
            let report = t.repository.fsck(full: full)
            #expect(!report.isClean, "full: \(full)")
            #expect(report.problems.contains { $0.description.contains("truncated") || $0.description.contains(FS.baseName(of: pack)) })
        }
        expectMLVError({ $0.isDamage }) { try t.repository.checkout("d", to: t.path("out")) }
        #expect(Scenario.lstatOrNil(t.path("out")) == nil)
    }

    @Test func packFileCutToNothing() throws {
        let (t, _, pack) = try storeWithAChunk()
        try truncateFile(pack, to: 0)
        let report = t.repository.fsck()
        #expect(!report.isClean)
        expectMLVError({ $0.isDamage }) { try t.repository.checkout("d", to: t.path("out")) }
        #expect(Scenario.lstatOrNil(t.path("out")) == nil)
    }

    @Test func missingPackFileIsNamed() throws {
        let (t, _, pack) = try storeWithAChunk()
        #expect(unlink(pack) == 0)
        let report = try t.reopen().fsck()
        #expect(!report.isClean)
        #expect(report.problems.contains { $0.subject.hasSuffix(".idx") && $0.message.contains("without its pack") })
    }

    @Test func emptiedRefFile() throws {
        let (t, _, _) = try storeWithAChunk()
        let ref = t.repository.storePath + "/refs/dataset/d/versions/1"
        try truncateFile(ref, to: 0)
        let report = t.repository.fsck()
        #expect(!report.isClean)
        #expect(report.problems.contains { $0.subject.contains("refs/dataset/d/versions/1") && $0.message.contains("empty") })
        expectMLVError({ $0.isDamage }, mentions: ["versions/1", "empty"]) {
            try t.repository.resolve("d")
        }
    }

    @Test func refPointingAtAMissingManifest() throws {
        let (t, _, _) = try storeWithAChunk()
        let missing = SHA256.hash(Array("nothing".utf8))
        try Scenario.write(.text(missing.hex + "\n"), at: t.repository.storePath + "/refs/dataset/d/versions/2")
        let report = t.repository.fsck()
        #expect(report.problems.contains { $0.description.contains(missing.hex) })
        expectMLVError({ $0.isDamage }, mentions: [missing.hex]) {
            _ = try t.repository.checkout("d@v2", to: t.path("out"))
        }
    }

    @Test func damagedIndexFileIsNamed() throws {
        let (t, _, pack) = try storeWithAChunk()
        let index = String(pack.dropLast(5)) + ".idx"
        try patchFile(index, at: PackFormat.indexHeaderSize + 3) { $0 ^ 1 }
        expectMLVError({ $0.isDamage }, mentions: [FS.baseName(of: index)]) {
            try t.reopen()
        }
        #expect(!t.repository.fsck().isClean)
    }

    @Test func storeFromANewerFormatIsRefused() throws {
        let t = try TestRepository()
        let config = t.repository.storePath + "/config"
        try Scenario.write(.text(#"{"chunker":{"avg":65536,"max":262144,"min":16384},"format":2}"# + "\n"), at: config)
        let e = expectMLVError({ if case .store(.newerFormat) = $0 { true } else { false } },
                               mentions: [config, "format version 2", "Upgrade mlv"]) {
            try t.reopen()
        }
        #expect(e != nil)
    }

    @Test func damagedConfigIsNamed() throws {
        let t = try TestRepository()
        let config = t.repository.storePath + "/config"
        try Scenario.write(.text("{not json"), at: config)
        expectMLVError({ $0.isDamage }, mentions: [config]) { try t.reopen() }
    }
}

@Suite("gc")
struct GCTests {
    @Test func keepsEverythingReachable() throws {
        let t = try TestRepository()
        try t.write("data", ["a.bin": .random(seed: 1, count: 200_000), "b.txt": "b\n", "e/": .directory])
        try t.add("d", "data")
        try t.write("data/a.bin", .random(seed: 2, count: 200_000))
        try t.add("d", "data")
        try t.write("src/prep.py", "print(1)\n")
        try t.add("e", "data") { $0.from = ["d@v1"]; $0.code = [t.path("src/prep.py")]; $0.splits = ["e": "e"] }
        // One pack no ref reaches, left by an interrupted add.
        let writer = t.repository.objects.writer()
        try writer.put(SHA256.hash(Array("orphan".utf8)), kind: .chunk, bytes: Array("orphan".utf8), compression: .never)
        try writer.commit()

        let dry = try t.repository.gc(graceSeconds: 0, dryRun: true)
        #expect(dry.objectsRemoved == 1)
        let packsBefore = try t.packFiles()
        let report = try t.repository.gc(graceSeconds: 0, dryRun: false)
        #expect(report.objectsRemoved == 1 && report.packsRemoved.count == 1)
        #expect(try t.packFiles().count == packsBefore.count - 1)
        #expect(!t.repository.objects.contains(SHA256.hash(Array("orphan".utf8))))

        let repo = try t.reopen()
        #expect(repo.fsck(full: true).isClean)
        _ = try repo.checkout("d@v1", to: t.path("v1"))
        _ = try repo.checkout("d@v2", to: t.path("v2"))
        _ = try repo.checkout("e@v1", to: t.path("e1"))
        #expect(try t.read("v1/a.bin") == splitmix64Bytes(seed: 1, count: 200_000))
        #expect(try t.snapshot("v2") == t.snapshot("data"))
        #expect(try t.snapshot("e1") == t.snapshot("data"))
        // A second gc finds nothing to do.
        #expect(try repo.gc(graceSeconds: 0, dryRun: false).objectsRemoved == 0)
    }

    @Test func removesTheObjectsOfAVersionWhoseRefWasDeleted() throws {
        let t = try TestRepository()
        try t.write("data", ["a.bin": .random(seed: 1, count: 300_000), "shared.txt": "shared\n"])
        try t.add("d", "data")
        try t.write("data/a.bin", .random(seed: 2, count: 300_000))
        try t.add("d", "data")
        let gone = SHA256.hash(splitmix64Bytes(seed: 2, count: 300_000))
        #expect(unlink(t.repository.storePath + "/refs/dataset/d/versions/2") == 0)

        // With the default grace period, young packs are kept.
        let young = try t.repository.gc(graceSeconds: 14 * 86400, dryRun: false)
        #expect(young.objectsRemoved == 0 && young.keptForGrace > 0)
        #expect(t.repository.objects.contains(gone))

        let report = try t.repository.gc(graceSeconds: 0, dryRun: false)
        #expect(report.bytesFreed >= 300_000)
        #expect(!t.repository.objects.contains(gone))
        let repo = try t.reopen()
        #expect(!repo.objects.contains(gone))
        #expect(repo.fsck(full: true).isClean)
        _ = try repo.checkout("d@v1", to: t.path("v1"))
        #expect(try t.read("v1/a.bin") == splitmix64Bytes(seed: 1, count: 300_000))
    }

    /// A pack with live and dead objects is rewritten with only the live ones.
    @Test func rewritesPacksThatAreOnlyPartlyLive() throws {
        let t = try TestRepository()
        try t.write("data", ["a.bin": .random(seed: 3, count: 100_000)])
        try t.add("first", "data")      // pack 1: chunk, tree, manifest of first
        try t.add("second", "data")     // pack 2: only second's manifest
        Scenario.removeTree(t.repository.storePath + "/refs/dataset/first")
        let report = try t.repository.gc(graceSeconds: 0, dryRun: false)
        #expect(report.objectsRemoved == 1 && report.packsRewritten.count == 1)
        let repo = try t.reopen()
        #expect(repo.fsck(full: true).isClean)
        _ = try repo.checkout("second", to: t.path("out"))
        #expect(try t.snapshot("out") == t.snapshot("data"))
    }

    @Test func refusesWhenFsckFindsDamage() throws {
        let t = try TestRepository()
        try t.write("data", ["a.bin": .random(seed: 1, count: 50_000)])
        try t.add("d", "data")
        try t.write("data/b.bin", .random(seed: 2, count: 50_000))
        try t.add("d", "data")
        #expect(unlink(t.repository.storePath + "/refs/dataset/d/versions/1") == 0)  // v1's pack is now garbage
        try truncateFile(t.repository.storePath + "/refs/dataset/d/versions/2", to: 0)
        let packs = try t.packFiles()
        expectMLVError({ $0.isDamage }, mentions: ["gc refused", "versions/2"]) {
            try t.repository.gc(graceSeconds: 0, dryRun: false)
        }
        #expect(try t.packFiles() == packs)
    }

    /// Regression: a gc that failed after naming its new pack but before indexing it left
    /// that pack behind; the next gc wrote the same pack again (same objects, same name)
    /// and then deleted it as a leftover, losing live objects.
    @Test func aRetriedGCDoesNotDeleteThePackItRewroteAsALeftover() throws {
        let t = try TestRepository()
        try t.write("half", ["c.bin": .random(seed: 2, count: 120_000)])
        try t.add("x", "half")
        try t.add("y", "half")
        Scenario.removeTree(t.repository.storePath + "/refs/dataset/x")  // x's pack is now half live
        let packs = t.repository.storePath + "/packs/"
        #expect(throws: MLVError.self) {
            try FaultInjection.withHook({ op, path in
                op == .open && path.hasPrefix(packs) && path.hasSuffix(".idx.tmp") ? EIO : nil
            }) {
                try t.repository.gc(graceSeconds: 0, dryRun: false)
            }
        }
        #expect(t.repository.fsck().problems.contains { $0.message.contains("pack without an index") })
        let report = try t.repository.gc(graceSeconds: 0, dryRun: false)
        #expect(report.packsRewritten.count == 1)
        let repo = try t.reopen()
        #expect(repo.fsck(full: true).isClean, "\(repo.fsck(full: true).problems)")
        _ = try repo.checkout("y", to: t.path("out"))
        #expect(try t.snapshot("out") == t.snapshot("half"))
    }

    @Test func removesLeftoversOfInterruptedWrites() throws {
        let t = try TestRepository()
        try t.write("data", ["a.txt": "a\n"])
        try t.add("d", "data")
        let packs = t.repository.storePath + "/packs"
        try Scenario.write(.text("half a pack"), at: packs + "/.pack.tmp-1-1")
        try Scenario.write(.text("orphan pack"), at: packs + "/pack-0000.pack")
        let report = t.repository.fsck()
        #expect(report.isClean)
        #expect(report.problems.filter { $0.severity == .warning }.count == 2)
        let gc = try t.repository.gc(graceSeconds: 0, dryRun: false)
        #expect(gc.temporaryFilesRemoved == 2)
        #expect(t.repository.fsck().problems.isEmpty)
    }
}
