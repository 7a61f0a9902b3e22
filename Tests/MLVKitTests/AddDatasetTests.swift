import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("add dataset: versions, diff and status")
struct AddDatasetTests {
    static let first: KeyValuePairs<String, ScenarioEntry> = [
        "a.txt": "alpha\n",
        "b.txt": "bravo bravo\n",
        "sub/c.bin": .random(seed: 1, count: 3000),
    ]

    @Test func firstAddCreatesVersionOneWithTheFilesAndBytes() throws {
        let t = try TestRepository()
        try t.write("data", Self.first)
        let r = try t.add("mnist", "data") { $0.message = "first cut" }
        #expect(r.created)
        #expect(r.version == 1)
        #expect(r.files == 3)
        #expect(r.bytes == 6 + 12 + 3000)
        #expect(r.newBytesStored > 3000)

        let (resolved, files) = try t.repository.listFiles("mnist@v1")
        #expect(resolved.id == r.id)
        #expect(files.map(\.path) == ["a.txt", "b.txt", "sub/c.bin"])
        #expect(files.map(\.size) == [6, 12, 3000])
        for f in files {
            let expected = try t.read("data/" + f.path)
            #expect(f.id == SHA256.hash(expected))
            var got: [UInt8] = []
            try t.repository.readBlob(f.id!) { got += $0 }
            #expect(got == expected)
        }
        let m = try t.repository.datasetManifest(r.id)
        #expect(m.name == "mnist" && m.files == 3 && m.bytes == r.bytes && m.message == "first cut")
        #expect(m.source == "data")
        #expect(try t.repository.versions(of: "mnist").map(\.version) == [1])
        #expect(t.repository.fsck(full: true).isClean)
    }

    @Test func reAddingAnUnchangedDirectoryCreatesNoVersion() throws {
        let t = try TestRepository()
        try t.write("data", Self.first)
        let v1 = try t.add("mnist", "data")
        let before = try t.recorded()
        let again = try t.add("mnist", "data")
        #expect(!again.created)
        #expect(again.version == 1 && again.id == v1.id)
        #expect(again.newBytesStored == 0)
        #expect(try t.recorded() == before)
    }

    @Test func changesMakeVersionTwoAndDiffAndStatusReportExactlyThem() throws {
        let t = try TestRepository()
        try t.write("data", Self.first)
        try t.add("mnist", "data")

        try t.write("data/a.txt", "alpha, longer now\n")   // modified: 6 -> 18
        t.remove("data/b.txt")                                // deleted: 12
        try t.write("data/sub/d.txt", "delta\n")              // added: 6
        let expected = [
            Change(kind: .modified, path: "a.txt", oldSize: 6, newSize: 18),
            Change(kind: .deleted, path: "b.txt", oldSize: 12, newSize: nil),
            Change(kind: .added, path: "sub/d.txt", oldSize: nil, newSize: 6),
        ]

        let status = try t.repository.status(dataset: "mnist")
        #expect(status.version == 1)
        #expect(status.changes == expected)

        let v2 = try t.add("mnist", "data")
        #expect(v2.created && v2.version == 2 && v2.files == 3)
        let (from, to, changes) = try t.repository.diff("mnist@v1", "mnist@v2")
        #expect(from.version == 1 && to.version == 2)
        #expect(changes == expected)
        #expect(try t.repository.diff("mnist@v2", "mnist@v2").2.isEmpty)
        #expect(try t.repository.status(dataset: "mnist").changes.isEmpty)
        #expect(try t.repository.resolve("mnist").version == 2)
    }

    @Test func aModeChangeIsAModification() throws {
        let t = try TestRepository()
        try t.write("data", ["run.sh": .text("echo hi\n", mode: 0o644)])
        try t.add("tools", "data")
        #expect(chmod(t.path("data/run.sh"), 0o755) == 0)
        #expect(try t.repository.status(dataset: "tools").changes == [Change(kind: .modified, path: "run.sh", oldSize: 8, newSize: 8)])
    }

    @Test func fromInputsAreRecordedWithTheirRoles() throws {
        let t = try TestRepository()
        try t.write("raw", ["x.csv": "1,2\n"])
        try t.write("clean", ["x.csv": "1;2\n"])
        let raw = try t.add("raw", "raw")
        let clean = try t.add("clean", "clean") { $0.from = ["raw@v1", "source=raw"] }
        let m = try t.repository.datasetManifest(clean.id)
        #expect(m.inputs == [
            Input(role: "parent", id: raw.id, ref: "raw@v1"),
            Input(role: "source", id: raw.id, ref: "raw@v1"),
        ])
        // The same inputs again: nothing changed.
        #expect(try !t.add("clean", "clean") { $0.from = ["raw@v1", "source=raw"] }.created)
        // Other inputs are a change even when the files are not.
        #expect(try t.add("clean", "clean").created)
        #expect(t.repository.fsck().isClean)
    }

    @Test func codeInputIsASnapshotOfTheNamedFiles() throws {
        let t = try TestRepository()
        try t.write("src", ["prep.py": "print('prep')\n", "lib/util.py": "X = 1\n"])
        try t.write("data", ["a.txt": "a\n"])
        let r = try t.add("mnist", "data") { $0.code = [t.path("src/prep.py"), t.path("src/lib/util.py")] }
        let m = try t.repository.datasetManifest(r.id)
        let code = try #require(m.inputs.first { $0.role == "code" })
        #expect(m.inputs.count == 1)
        let (kind, bytes) = try t.repository.objects.read(code.id)
        #expect(kind == .manifest)
        let snapshot = try CodeManifest(json: try JSON.parse(bytes))
        #expect(snapshot.paths == ["src/lib/util.py", "src/prep.py"])
        let files = try t.repository.flatten(snapshot.root)
        #expect(files.map(\.path) == ["src/lib/util.py", "src/prep.py"])
        #expect(files.map(\.id) == [SHA256.hash(Array("X = 1\n".utf8)), SHA256.hash(Array("print('prep')\n".utf8))])

        // Editing the code makes a new version even though the data did not change.
        try t.write("src/prep.py", "print('prep v2')\n")
        let r2 = try t.add("mnist", "data") { $0.code = [t.path("src/prep.py"), t.path("src/lib/util.py")] }
        #expect(r2.created && r2.version == 2)
        #expect(t.repository.fsck(full: true).isClean)
    }

    @Test func splitsRecordSubtreeIdsAndResolve() throws {
        let t = try TestRepository()
        try t.write("data", [
            "train/0.txt": "zero\n", "train/1.txt": "one\n",
            "eval/0.txt": "eval zero\n",
            "README": "readme\n",
        ])
        try t.add("mnist", "data")
        let r = try t.add("mnist", "data") { $0.splits = ["train": "train/", "eval": "eval"] }
        #expect(r.created && r.version == 2)   // splits alone are a change
        let m = try t.repository.datasetManifest(r.id)
        let root = try t.repository.tree(m.root)
        let trainTree = try #require(root.entries.first { $0.name == "train" }?.id)
        let evalTree = try #require(root.entries.first { $0.name == "eval" }?.id)
        #expect(m.splits["train"] == Split(path: "train", tree: trainTree, files: 2, bytes: 9))
        #expect(m.splits["eval"] == Split(path: "eval", tree: evalTree, files: 1, bytes: 10))

        let resolved = try t.repository.resolve("mnist@v2#train")
        #expect(resolved.split == "train" && resolved.version == 2 && resolved.display == "mnist@v2#train")
        #expect(try t.repository.treeID(of: resolved) == trainTree)
        #expect(try t.repository.listFiles("mnist@v2#train").1.map(\.path) == ["0.txt", "1.txt"])
        #expect(try t.repository.resolve("dataset:mnist#eval").split == "eval")

        expectMLVError({ if case .unknownSplit = $0 { true } else { false } }, mentions: ["test", "eval", "train"]) {
            try t.repository.resolve("mnist@v2#test")
        }
        expectMLVError({ if case .unknownSplit = $0 { true } else { false } }, mentions: ["has none"]) {
            try t.repository.resolve("mnist@v1#train")
        }
    }

    @Test func splitsMustNameDirectoriesInsideTheDataset() throws {
        let t = try TestRepository()
        try t.write("data", ["train/0.txt": "zero\n", "file.txt": "f\n"])
        let before = try t.recorded()
        for sub in ["missing", "file.txt", "../data", ""] {
            expectMLVError({ if case .invalidArgument = $0 { true } else { false } }, mentions: ["--split train=\(sub)"]) {
                try t.add("mnist", "data") { $0.splits = ["train": sub] }
            }
        }
        expectMLVError({ if case .invalidName = $0 { true } else { false } }, mentions: ["Train"]) {
            try t.add("mnist", "data") { $0.splits = ["Train": "train"] }
        }
        try expectNothingRecorded(t, since: before)
    }

    @Test func messageMetaAndAuthorAreRecorded() throws {
        let t = try TestRepository()
        try t.write("data", ["a.txt": "a\n"])
        try t.repository.setIdentity("alice@lab")
        let repo = try t.reopen()
        let r = try t.add("mnist", "data", on: repo) {
            $0.message = "first cut"
            $0.meta = ["source": "scraper", "rows": "1"]
        }
        let m = try repo.datasetManifest(r.id)
        #expect(m.message == "first cut")
        #expect(m.meta == ["source": "scraper", "rows": "1"])
        // MLV_IDENTITY, when the environment running the tests sets it, wins over the config.
        let expected = getenv("MLV_IDENTITY").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "alice@lab"
        #expect(m.author == expected)
        #expect(Timestamp.parse(m.created) != nil)
    }

    @Test func setIdentityTakesEffectOnTheSameRepositoryValue() throws {
        let t = try TestRepository()
        guard getenv("MLV_IDENTITY") == nil else { return }  // the environment would override it anyway
        try t.repository.setIdentity("bob@lab")
        #expect(try t.reopen().identity == "bob@lab")
        #expect(t.repository.identity == "bob@lab")
    }

    @Test func singleFileDataset() throws {
        let t = try TestRepository()
        try t.write("model.bin", .random(seed: 7, count: 5000, mode: 0o600))
        let r = try t.add("weights", "model.bin")
        #expect(r.created && r.files == 1 && r.bytes == 5000)
        let files = try t.repository.listFiles("weights").1
        #expect(files.map(\.path) == ["model.bin"])
        _ = try t.repository.checkout("weights@v1", to: t.path("out"))
        #expect(try t.snapshot("out") == ["model.bin": .random(seed: 7, count: 5000, mode: 0o600)])
        #expect(try t.repository.status(dataset: "weights").changes.isEmpty)
        try t.write("model.bin", .random(seed: 8, count: 5000, mode: 0o600))
        #expect(try t.repository.status(dataset: "weights").changes == [Change(kind: .modified, path: "model.bin", oldSize: 5000, newSize: 5000)])
    }

    /// The repository root itself is a dataset: its own `.mlv` is skipped.
    @Test func addingTheRepositoryRootSkipsTheStore() throws {
        let t = try TestRepository()
        try t.write("", ["a.txt": "a\n", "sub/b.txt": "b\n"])
        let r = try t.add("everything", "")
        #expect(r.files == 2)
        #expect(try t.repository.listFiles("everything").1.map(\.path) == ["a.txt", "sub/b.txt"])
        #expect(try t.repository.status(dataset: "everything").changes.isEmpty)
        #expect(try !t.add("everything", "").created)
    }

    @Test func emptyDirectoryAndEmptyFileAreVersioned() throws {
        let t = try TestRepository()
        try t.write("data", ["empty.txt": "", "nothing/": .directory, "deep/er/": .directory])
        let r = try t.add("e", "data")
        #expect(r.files == 1 && r.bytes == 0)
        _ = try t.repository.checkout("e", to: t.path("out"))
        #expect(try t.snapshot("out") == t.snapshot("data"))
    }
}

@Suite("storage: large files, dedup and appends")
struct StorageTests {
    /// A file above the 4 MiB large-file threshold, cut into many chunks, round-trips
    /// byte for byte.
    @Test func largeFileRoundTripsThroughCheckout() throws {
        let t = try TestRepository()
        let size = 12 << 20
        try t.write("data/big.bin", .random(seed: 42, count: size))
        try t.write("data/small.txt", "small\n")
        let r = try t.add("big", "data")
        #expect(r.bytes == Int64(size) + 6)
        let big = try #require(try t.repository.listFiles("big").1.first { $0.path == "big.bin" })
        #expect(big.id == SHA256.hash(splitmix64Bytes(seed: 42, count: size)))
        #expect(t.repository.objects.info(big.id!)?.kind == .chunkList)
        // Incompressible: about the file's size is stored, and not much more.
        #expect(r.newBytesStored >= size && r.newBytesStored < size + size / 50)

        _ = try t.repository.checkout("big@v1", to: t.path("out"))
        #expect(try t.read("out/big.bin") == splitmix64Bytes(seed: 42, count: size))
        #expect(try t.read("out/small.txt") == Array("small\n".utf8))
        #expect(t.repository.fsck(full: true).isClean)
    }

    @Test func aCopyUnderAnotherNameStoresAlmostNothing() throws {
        let t = try TestRepository()
        let data = splitmix64Bytes(seed: 3, count: 1 << 20)
        try t.write("data/a.bin", .file(data, mode: 0o644))
        let first = try t.add("d", "data")
        #expect(first.newBytesStored > data.count)
        try t.write("data/copy-of-a.bin", .file(data, mode: 0o644))
        let second = try t.add("d", "data")
        #expect(second.created)
        #expect(second.newBytesStored < 4096, "only a tree and a manifest are new")
        // The same bytes as another dataset: nothing but its tree and manifest either.
        try t.write("other/x.bin", .file(data, mode: 0o644))
        #expect(try t.add("other", "other").newBytesStored < 4096)
    }

    @Test func appendingStoresFarFewerBytesThanTheFile() throws {
        let t = try TestRepository()
        let base = splitmix64Bytes(seed: 5, count: 3 << 20)
        let tail = splitmix64Bytes(seed: 6, count: 32 << 10)
        try t.write("data/rows.bin", .file(base, mode: 0o644))
        try t.add("rows", "data")
        try t.write("data/rows.bin", .file(base + tail, mode: 0o644))
        let r = try t.add("rows", "data")
        #expect(r.created)
        // The appended 32 KiB plus the re-cut last chunk (at most 256 KiB) and metadata.
        #expect(r.newBytesStored < tail.count + ChunkerParameters.default.max + 16 * 1024)
        #expect(r.newBytesStored < base.count / 8)
        _ = try t.repository.checkout("rows@v2", to: t.path("out"))
        #expect(try t.read("out/rows.bin") == base + tail)
    }
}

@Suite("stat cache")
struct StatCacheTests {
    @Test func unchangedReAddAndStatusHashNothing() throws {
        let t = try TestRepository()
        try t.write("data", ["a.txt": "a\n", "b/c.txt": "c\n", "big.bin": .random(seed: 1, count: 100_000)])
        let first = try t.add("d", "data")
        #expect(first.filesHashed == 3)
        let again = try t.add("d", "data")
        #expect(!again.created && again.filesHashed == 0)
        let status = try t.repository.status(dataset: "d")
        #expect(status.changes.isEmpty && status.filesHashed == 0)
        // A second handle (another process) trusts the same cache.
        #expect(try t.reopen().status(dataset: "d").filesHashed == 0)
    }

    /// Status may reuse the cached root only when nothing but file stat data could have
    /// changed; every other kind of change must still show, and a re-add must record it.
    @Test(arguments: ["symlink target", "empty directory added", "empty directory removed", "directory mode", "file mode"])
    func changesBesideFileContentsAreSeen(_ change: String) throws {
        let t = try TestRepository()
        try t.write("data", ["a.txt": "a\n", "link": .symlink("a.txt"), "keep/": .directory, "sub/b.txt": "b\n"])
        try t.add("d", "data")
        #expect(try t.repository.status(dataset: "d").changes.isEmpty)
        switch change {
        case "symlink target":
            unlink(t.path("data/link")); symlink("sub/b.txt", t.path("data/link"))
        case "empty directory added":
            mkdir(t.path("data/new"), 0o755)
        case "empty directory removed":
            rmdir(t.path("data/keep"))
        case "directory mode":
            chmod(t.path("data/sub"), 0o700)
        default:
            chmod(t.path("data/a.txt"), 0o755)
        }
        let status = try t.repository.status(dataset: "d")
        #expect(!status.changes.isEmpty, "\(change) went unseen")
        #expect(try t.add("d", "data").created, "\(change) made no new version")
        #expect(try t.repository.status(dataset: "d").changes.isEmpty)
    }

    @Test func touchingWithoutChangingContentIsClean() throws {
        let t = try TestRepository()
        try t.write("data", ["a.txt": "a\n", "b.txt": "b\n"])
        try t.add("d", "data")
        try Scenario.setModificationTime(t.path("data/a.txt"), seconds: 1_000_000_000)
        let s = try t.repository.status(dataset: "d")
        #expect(s.changes.isEmpty)
        #expect(s.filesHashed == 0, "the quick XXH3 check decides; no SHA-256 needed")
        #expect(try !t.add("d", "data").created)
    }

    @Test func statusRefreshesTheCacheAfterATouch() throws {
        let t = try TestRepository()
        try t.write("data", ["a.txt": "a\n"])
        try t.add("d", "data")
        try Scenario.setModificationTime(t.path("data/a.txt"), seconds: 1_000_000_000)
        #expect(try t.repository.status(dataset: "d").changes.isEmpty)
        let cache = try #require(StatCache.decode(try Scenario.read(t.repository.storePath + "/cache/stat/dataset-d")))
        let touched: Int64 = 1_000_000_000 * 1_000_000_000
        #expect(cache.entries.first?.mtimeNanoseconds == touched)
    }

    @Test func sameSizeEditWithRestoredMtimeIsStillSeen() throws {
        let t = try TestRepository()
        try t.write("data", ["a.txt": "aaaa\n"])
        try t.add("d", "data")
        let before = try #require(Scenario.lstatOrNil(t.path("data/a.txt")))
        try t.write("data/a.txt", "bbbb\n")   // same inode, same size
        try Scenario.setModificationTime(t.path("data/a.txt"), seconds: Int64(before.st_mtim.tv_sec),
                                         nanoseconds: before.st_mtim.tv_nsec)
        let s = try t.repository.status(dataset: "d")
        #expect(s.changes == [Change(kind: .modified, path: "a.txt", oldSize: 5, newSize: 5)])
        #expect(try t.add("d", "data").created)
    }

    @Test func aDamagedCacheOnlyCostsARescan() throws {
        let t = try TestRepository()
        try t.write("data", ["a.txt": "a\n"])
        try t.add("d", "data")
        try Scenario.write(.text("garbage"), at: t.repository.storePath + "/cache/stat/dataset-d")
        let s = try t.repository.status(dataset: "d")
        #expect(s.changes.isEmpty && s.filesHashed == 1)
    }
}

/// Tensor-aligned chunking: rewriting whole tensors of a safetensors checkpoint stores
/// the rewritten bytes and hardly more, where plain content-defined chunking also
/// stores the chunks straddling each rewritten tensor's edges.
@Suite struct TensorAlignedChunkingTests {
    /// A checkpoint of `sizes` tensors with seeded random contents; `rewrite` tensors get new bytes.
    func checkpoint(_ sizes: [Int], seed: UInt64, rewrite: Set<Int> = []) -> [UInt8] {
        var header = "{"
        var offset = 0
        for (i, s) in sizes.enumerated() {
            header += (i > 0 ? "," : "") + "\"t\(i)\":{\"dtype\":\"U8\",\"shape\":[\(s)],\"data_offsets\":[\(offset),\(offset + s)]}"
            offset += s
        }
        header += "}"
        var out: [UInt8] = []
        for i in 0..<8 { out.append(UInt8((header.utf8.count >> (8 * i)) & 0xff)) }
        out += Array(header.utf8)
        for (i, s) in sizes.enumerated() {
            out += splitmix64Bytes(seed: rewrite.contains(i) ? seed &+ 1000 &+ UInt64(i) : seed &+ UInt64(i), count: s)
        }
        return out
    }

    func storedForRewrite(align: Bool) throws -> (stored: Int, changed: Int) {
        let t = try TestRepository()
        var config = t.repository.config
        config.alignTensors = align
        try FS.atomicWrite(t.repository.storePath + "/config", config.encoded())
        let repo = try t.reopen()
        let sizes = (0..<24).map { 150_000 + 23_000 * ($0 % 7) }
        let rewrite: Set<Int> = [3, 11, 12, 20]
        try t.write("m/model.safetensors", .file(checkpoint(sizes, seed: 5), mode: 0o644))
        _ = try repo.addModel(AddModelRequest(name: "m", path: t.path("m")))
        try t.write("m/model.safetensors", .file(checkpoint(sizes, seed: 5, rewrite: rewrite), mode: 0o644))
        let r = try repo.addModel(AddModelRequest(name: "m", path: t.path("m")))
        #expect(r.version == 2)
        #expect(repo.fsck(full: true).isClean)
        return (r.newBytesStored, rewrite.map { sizes[$0] }.reduce(0, +))
    }

    @Test func rewrittenTensorsCostTheirOwnBytes() throws {
        let aligned = try storedForRewrite(align: true)
        let plain = try storedForRewrite(align: false)
        // Aligned: the rewritten bytes, the new chunk list and manifest, a little more.
        #expect(Double(aligned.stored) <= Double(aligned.changed) * 1.02, "\(aligned)")
        // Plain chunking stores the chunks around each edge again.
        #expect(plain.stored > aligned.stored + 4 * 16_384, "plain \(plain), aligned \(aligned)")
    }

    @Test func alignmentIsRecordedInTheConfigAndOldConfigsReadAsOff() throws {
        let t = try TestRepository()
        #expect(t.repository.config.alignTensors)
        let path = t.repository.storePath + "/config"
        #expect(String(decoding: try FS.readFile(path), as: UTF8.self).contains(#""align":["safetensors"]"#))
        try FS.atomicWrite(path, Array(#"{"chunker":{"avg":65536,"max":262144,"min":16384},"format":1}"#.utf8) + [10])
        #expect(try t.reopen().config.alignTensors == false)
        try FS.atomicWrite(path, Array(#"{"align":["gguf"],"chunker":{"avg":65536,"max":262144,"min":16384},"format":1}"#.utf8) + [10])
        expectMLVError({ $0.isDamage }, mentions: ["gguf", "upgrade"]) { _ = try t.reopen() }
    }
}
