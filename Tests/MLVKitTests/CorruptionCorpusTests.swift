import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The corruption cases a hostile or buggy writer to a shared store can produce without
/// breaking any checksum: objects under the wrong id, of the wrong kind, missing chunks,
/// and the same id stored twice with one copy damaged. Each is named by fsck and refused
/// by checkout before the target is touched.
@Suite("corruption corpus: wrong ids, wrong kinds, missing chunks, conflicting copies")
struct CorruptionCorpusTests {
    /// Commits `objects` (id, kind, bytes) exactly as given, bypassing every check.
    func commitRaw(_ repo: Repository, _ objects: [(ObjectID, ObjectKind, [UInt8])]) throws {
        let writer = repo.objects.writer()
        for (id, kind, bytes) in objects { try writer.put(id, kind: kind, bytes: bytes, compression: .never) }
        try writer.commit()
    }

    /// Commits a version of dataset `d` whose root tree is `root`; returns nothing, the
    /// ref is `d@v1`.
    func commitVersion(_ t: TestRepository, root: Tree, extra: [(ObjectID, ObjectKind, [UInt8])]) throws {
        try commitRaw(t.repository, extra)
        try commitHandMadeVersion(t.repository, name: "d", root: root)
    }

    func expectNamedAndRefused(_ t: TestRepository, full: Bool = false, mentions: [String],
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let report = t.repository.fsck(full: full)
        #expect(!report.isClean, sourceLocation: sourceLocation)
        for m in mentions {
            #expect(report.problems.contains { $0.description.contains(m) }, "fsck does not name '\(m)': \(report.problems)",
                    sourceLocation: sourceLocation)
        }
        try t.write("target/mine.txt", "mine\n")
        let before = try t.snapshot("target")
        expectMLVError({ $0.isDamage }, sourceLocation: sourceLocation) {
            try t.repository.checkout("d", to: t.path("target"))
        }
        #expect(try t.snapshot("target") == before, "checkout touched the target", sourceLocation: sourceLocation)
    }

    @Test func aChunkStoredUnderAnotherContentsID() throws {
        let t = try TestRepository()
        let claimed = Array("the bytes the tree promises\n".utf8)
        let stored = Array("other bytes of the same size\n".utf8)
        let id = SHA256.hash(claimed)
        try commitVersion(t, root: Tree(entries: [fileEntry("a.txt", claimed)]), extra: [(id, .chunk, stored)])
        try expectNamedAndRefused(t, full: true, mentions: [id.hex, "hashes to"])
    }

    @Test func aChunkListUnderAnotherBlobsID() throws {
        let t = try TestRepository()
        let real = splitmix64Bytes(seed: 1, count: 40_000), other = splitmix64Bytes(seed: 2, count: 40_000)
        // The list claims the blob id of `real` but assembles `other`; every chunk is genuine.
        let blob = SHA256.hash(real)
        let halves = [Array(other[0..<20_000]), Array(other[20_000...])]
        let list = ChunkList.encode(halves.map { (SHA256.hash($0), $0.count) })
        try commitVersion(t, root: Tree(entries: [fileEntry("a.bin", real)]),
                          extra: halves.map { (SHA256.hash($0), .chunk, $0) } + [(blob, .chunkList, list)])
        try expectNamedAndRefused(t, full: true, mentions: [blob.hex])
    }

    @Test func aChunkListNamingAChunkThatIsNotStored() throws {
        let t = try TestRepository()
        let data = splitmix64Bytes(seed: 3, count: 40_000)
        let halves = [Array(data[0..<20_000]), Array(data[20_000...])]
        let list = ChunkList.encode(halves.map { (SHA256.hash($0), $0.count) })
        try commitVersion(t, root: Tree(entries: [fileEntry("a.bin", data)]),
                          extra: [(SHA256.hash(halves[0]), .chunk, halves[0]), (SHA256.hash(data), .chunkList, list)])
        try expectNamedAndRefused(t, mentions: [SHA256.hash(halves[1]).hex, "missing"])
    }

    @Test func aFileEntryThatNamesATree() throws {
        let t = try TestRepository()
        let inner = Tree(entries: [fileEntry("x.txt", Array("x\n".utf8))])
        let innerBytes = inner.canonicalBytes()
        // The entry says "file", its id is a tree's.
        let entry = Tree.Entry(name: "a.txt", kind: .file, mode: 0o644, size: Int64(innerBytes.count), id: inner.id)
        try commitVersion(t, root: Tree(entries: [entry]), extra: [(inner.id, .tree, innerBytes)])
        try expectNamedAndRefused(t, mentions: [inner.id.hex, "found a tree"])
    }

    @Test func aRefThatNamesATreeInsteadOfAManifest() throws {
        let t = try TestRepository()
        try t.write("data", ["a.txt": "a\n"])
        try t.add("d", "data")
        let root = try t.repository.datasetManifest(try t.repository.resolve("d").id).root
        try Scenario.write(.text(root.hex + "\n"), at: t.repository.storePath + "/refs/dataset/d/versions/2")
        let report = t.repository.fsck()
        #expect(report.problems.contains { $0.description.contains(root.hex) && $0.description.contains("not a manifest") },
                "\(report.problems)")
        expectMLVError({ $0.isDamage }, mentions: ["not a manifest"]) {
            try t.repository.checkout("d@v2", to: t.path("out"))
        }
        #expect(Scenario.lstatOrNil(t.path("out")) == nil)
    }

    /// The same id in two packs, the copy found first damaged: reads refuse it rather
    /// than hand out its bytes, and fsck --full names the damaged pack.
    @Test func theSameObjectInTwoPacksWithOneCopyDamaged() throws {
        let t = try TestRepository()
        try t.write("data", ["a.bin": .random(seed: 4, count: 30_000)])
        try t.add("d", "data")
        let chunk = SHA256.hash(splitmix64Bytes(seed: 4, count: 30_000))
        // A second, independent copy of the chunk in a pack of its own (as two writers racing can leave).
        let writer = t.repository.objects.writer()
        let original = try #require(t.repository.objects.locate(chunk)).1
        #expect(!original.isCompressed)
        try splitmix64Bytes(seed: 4, count: 30_000).withUnsafeBytes { try writer.putStored(original, stored: $0) }
        try writer.commit()
        #expect(t.repository.objects.packIndexes.filter { $0.find(chunk) != nil }.count == 2)
        let (first, entry) = try #require(t.repository.objects.locate(chunk))
        try patchFile(first.packPath, at: entry.offset + PackFormat.recordHeaderSize + 100) { $0 ^ 0x10 }
        try t.write("target/mine.txt", "mine\n")
        let before = try t.snapshot("target")
        expectMLVError({ $0.isDamage }, mentions: [chunk.hex]) {
            try t.reopen().checkout("d", to: t.path("target"))
        }
        #expect(try t.snapshot("target") == before)
        let report = try t.reopen().fsck(full: true)
        #expect(report.problems.contains { $0.subject == FS.baseName(of: first.packPath) && $0.message.contains("checksum") },
                "\(report.problems)")
    }
}
