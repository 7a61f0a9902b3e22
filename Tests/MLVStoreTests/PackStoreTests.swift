import MLVBasics
import MLVTestSupport
import Testing

@testable import MLVStore

#if canImport(Glibc)
import Glibc
#endif

/// One object for the pack tests: a self-hashed chunk or tree.
struct TestObject {
    var id: ObjectID
    var kind: ObjectKind
    var bytes: [UInt8]

    init(kind: ObjectKind = .chunk, bytes: [UInt8]) {
        self.kind = kind
        self.bytes = bytes
        id = SHA256.hash(bytes)
    }

    /// `count` random chunks of `size` bytes, distinct for distinct seeds.
    static func random(_ count: Int, size: Int, seed: UInt64) -> [TestObject] {
        (0..<count).map { i in TestObject(bytes: splitmix64Bytes(seed: seed &* 1_000_003 &+ UInt64(i), count: size)) }
    }

    /// A compressible tree of about `size` bytes.
    static func text(size: Int, seed: UInt64) -> TestObject {
        var bytes: [UInt8] = []
        var i = seed
        while bytes.count < size {
            bytes.append(contentsOf: "{\"name\":\"file-\(i % 97).csv\",\"size\":\(i &* 31 % 100_000)}\n".utf8)
            i &+= 1
        }
        return TestObject(kind: .tree, bytes: bytes)
    }
}

/// A pack store in a fresh temporary directory.
final class PackFixture {
    let directory: TemporaryDirectory
    let store: PackStore
    var path: String { directory.path }

    init() throws {
        directory = try TemporaryDirectory(prefix: "mlv-pack")
        store = try PackStore(directory: directory.path)
    }

    /// A writer that rolls to a new pack past `targetSize` bytes.
    func writer(targetSize: Int = PackFormat.targetPackSize) -> PackWriter {
        PackWriter(store: store, directory: path, targetSize: targetSize)
    }

    /// Puts and commits `objects` through one writer.
    func commit(_ objects: [TestObject], targetSize: Int = PackFormat.targetPackSize, compression: CompressionPolicy = .never) throws {
        let w = writer(targetSize: targetSize)
        for o in objects { try w.put(o.id, kind: o.kind, bytes: o.bytes, compression: compression) }
        try w.commit()
    }

    func files() throws -> [String] { try directory.list() }

    /// The only index file, and its pack.
    func onlyPack() throws -> (index: String, pack: String) {
        let names = try store.packNames()
        try #require(names.count == 1)
        return (path + "/pack-\(names[0]).idx", path + "/pack-\(names[0]).pack")
    }

    func expectReads(_ objects: [TestObject], from store: PackStore? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
        let s = store ?? self.store
        for o in objects {
            do {
                let got = try s.read(o.id)
                let same = got.bytes == o.bytes && got.kind == o.kind
                #expect(same, "\(o.id.short) reads back different bytes", sourceLocation: sourceLocation)
            } catch {
                Issue.record("\(o.id.short) does not read: \(error)", sourceLocation: sourceLocation)
            }
        }
    }
}

@Suite("PackStore")
struct PackStoreTests {
    /// `closeDescriptors` (gc and repair call it before deleting packs) while a read of
    /// the same store on another thread has its descriptor and has not yet read: that
    /// descriptor must stay open under the read, or an open elsewhere takes its number
    /// and the read gets another file's bytes (or EBADF). A fault hook plays both: at the
    /// read it drops the cache and opens a bystander file, as another thread would.
    @Test func closeDescriptorsLeavesAReadInFlightItsDescriptor() throws {
        let f = try PackFixture()
        let objects = TestObject.random(2, size: 3000, seed: 11)
        try f.commit(objects)
        let (_, packPath) = try f.onlyPack()
        let bystander = f.path + "/bystander"
        try FS.atomicWrite(bystander, [UInt8](repeating: 0xA5, count: try FS.readFile(packPath).count), durable: false)
        _ = try f.store.read(objects[0].id)  // opens and caches the pack's descriptor
        let opened = Locked<[Int32]>([])
        let store = f.store
        let read = FaultInjection.withHook({ op, p in
            guard op == .read, p == packPath, opened.withLock({ $0.isEmpty }) else { return nil }
            store.closeDescriptors()
            let fd = Glibc.open(bystander, O_RDONLY | O_CLOEXEC)
            opened.withLock { $0.append(fd) }
            return nil
        }) { Result { try f.store.read(objects[1].id) } }
        #expect(try read.get().bytes == objects[1].bytes)
        let fds = opened.withLock { $0 }
        #expect(fds.count == 1)
        for fd in fds {
            #expect(fcntl(fd, F_GETFD) != -1, "the bystander's descriptor \(fd) was closed")
            Glibc.close(fd)
        }
        // The dropped descriptor was closed once the read let go: the store reopens the pack.
        f.expectReads(objects)
    }

    // MARK: layout

    @Test("a small target size rolls to several packs, each sorted and checksummed")
    func rollsToSeveralPacks() throws {
        let f = try PackFixture()
        let objects = TestObject.random(60, size: 1500, seed: 1) + (0..<10).map { TestObject.text(size: 3000, seed: UInt64($0) * 1000) }
        let w = f.writer(targetSize: 16 << 10)
        for (i, o) in objects.enumerated() {
            try w.put(o.id, kind: o.kind, bytes: o.bytes, compression: i % 2 == 0 ? .never : .always)
        }
        #expect(w.written.objects == objects.count)
        try w.commit()

        let indexes = f.store.packIndexes
        #expect(indexes.count >= 4)
        #expect(indexes.map(\.count).reduce(0, +) == objects.count)
        for index in indexes {
            let entries = index.entries
            #expect(zip(entries, entries.dropFirst()).allSatisfy { $0.id < $1.id }, "\(index.name) is not sorted")
            let pack = try FS.readFile(index.packPath)
            #expect(Array(pack.prefix(8)) == PackFormat.packMagic)
            #expect(index.packChecksum == XXHash.xxh3_64(pack), "\(index.name): pack checksum")
            let indexBytes = try FS.readFile(index.indexPath)
            #expect(SHA256.hash(Array(indexBytes.dropLast(8))).hex == index.name, "a pack is named after its index")
            #expect(indexBytes.count == PackFormat.indexHeaderSize + PackFormat.indexTrailerSize + entries.count * PackFormat.indexEntrySize)
            for e in entries {
                #expect(e.offset >= 8 && e.offset + PackFormat.recordHeaderSize + e.storedLength <= pack.count)
            }
            // Records tile the pack: no gaps, no overlaps.
            let spans = entries.map { ($0.offset, $0.offset + PackFormat.recordHeaderSize + $0.storedLength) }.sorted { $0.0 < $1.0 }
            #expect(spans.first?.0 == 8)
            #expect(spans.last?.1 == pack.count)
            #expect(zip(spans, spans.dropFirst()).allSatisfy { $0.1 == $1.0 })
        }
        #expect(indexes.contains { $0.entries.contains { $0.isCompressed } }, "trees under .always are stored compressed")
        f.expectReads(objects, from: try PackStore(directory: f.path))
    }

    @Test("every single-bit flip in an index stops the store from opening, naming the file")
    func indexBitFlips() throws {
        let f = try PackFixture()
        try f.commit(TestObject.random(2, size: 100, seed: 2))
        let (indexPath, _) = try f.onlyPack()
        let original = try FS.readFile(indexPath)
        for offset in 0..<original.count {
            for bit in [0, 7] {
                var damaged = original
                damaged[offset] ^= UInt8(1 << bit)
                try PackDamage.writeFile(indexPath, damaged)
                let error = storeError { try PackStore(directory: f.path) }
                switch error {
                case .corruptFile(let path, _)?, .newerFormat(let path, _, _)?:
                    #expect(path == indexPath)
                    #expect("\(error!)".contains(indexPath))
                default:
                    Issue.record("byte \(offset) bit \(bit): \(String(describing: error))")
                }
            }
        }
        try PackDamage.writeFile(indexPath, original)
        _ = try PackStore(directory: f.path)
    }

    @Test("an unchanged index is not re-read on reload, a new damaged one is")
    func reloadChecksNewIndexes() throws {
        let f = try PackFixture()
        let first = TestObject.random(3, size: 200, seed: 3)
        try f.commit(first)
        let other = try PackStore(directory: f.path)
        let second = TestObject.random(3, size: 200, seed: 4)
        let w = other.writer()
        for o in second { try w.put(o.id, kind: o.kind, bytes: o.bytes, compression: .never) }
        try w.commit()
        let newName = try #require(other.packNames().first { name in !f.store.packIndexes.contains { $0.name == name } })
        let newIndex = f.path + "/pack-\(newName).idx"
        try PackDamage.flipByte(newIndex, at: PackFormat.indexHeaderSize + 5)
        let error = storeError { try f.store.reload() }
        guard case .corruptFile(let path, let reason)? = error else {
            Issue.record("expected corruptFile, got \(String(describing: error))")
            return
        }
        #expect(path == newIndex)
        #expect(reason.contains("checksum"))
        // The store keeps serving what it had.
        f.expectReads(first)
    }

    // MARK: damaged packs

    @Test("a flipped bit in a record's payload fails that read with corruptObject naming the id")
    func payloadBitFlip() throws {
        let f = try PackFixture()
        let objects = TestObject.random(3, size: 4096, seed: 5)
        try f.commit(objects)
        try PackDamage.flipPayload(of: objects[1].id, in: f.store)
        let error = storeError { try f.store.read(objects[1].id) }
        guard case .corruptObject(let id, let pack, let reason)? = error else {
            Issue.record("expected corruptObject, got \(String(describing: error))")
            return
        }
        #expect(id == objects[1].id)
        #expect(pack == (try f.onlyPack().pack))
        #expect(reason.contains("checksum"))
        #expect("\(error!)".contains(objects[1].id.hex))
        f.expectReads([objects[0], objects[2]])
    }

    @Test("damage the record checksum cannot see is caught by decompression or SHA-256",
          arguments: [CompressionPolicy.never, .always])
    func damageBehindAValidChecksum(compression: CompressionPolicy) throws {
        let f = try PackFixture()
        let o = TestObject.text(size: 20_000, seed: 6)
        try f.commit([o], compression: compression)
        #expect(f.store.locate(o.id)?.1.isCompressed == (compression == .always))
        try PackDamage.flipPayload(of: o.id, in: f.store, fixChecksum: true)
        let error = storeError { try f.store.read(o.id) }
        guard case .corruptObject(let id, _, let reason)? = error else {
            Issue.record("expected corruptObject, got \(String(describing: error))")
            return
        }
        #expect(id == o.id)
        #expect(!reason.contains("checksum"), "the record checksum was made to match: \(reason)")
    }

    @Test("a record header that disagrees with the index fails the read")
    func recordHeaderMismatch() throws {
        let f = try PackFixture()
        let objects = TestObject.random(2, size: 300, seed: 7)
        try f.commit(objects)
        let (_, entry) = try #require(f.store.locate(objects[0].id))
        let (_, packPath) = try f.onlyPack()
        try PackDamage.flipByte(packPath, at: entry.offset + 32)  // the kind byte
        let error = storeError { try f.store.read(objects[0].id) }
        guard case .corruptObject(let id, _, let reason)? = error else {
            Issue.record("expected corruptObject, got \(String(describing: error))")
            return
        }
        #expect(id == objects[0].id)
        #expect(reason.contains("header"))
        f.expectReads([objects[1]])
    }

    @Test("a truncated pack fails the reads of the records it lost", arguments: ["0", "1", "n-1"])
    func truncatedPack(length: String) throws {
        let f = try PackFixture()
        let objects = TestObject.random(4, size: 1000, seed: 8)
        try f.commit(objects)
        let (_, packPath) = try f.onlyPack()
        let size = try FS.readFile(packPath).count
        try PackDamage.truncate(packPath, to: length == "0" ? 0 : length == "1" ? 1 : size - 1)

        let reopened = try PackStore(directory: f.path)
        let last = objects.max { reopened.locate($0.id)!.1.offset < reopened.locate($1.id)!.1.offset }!
        let lost = length == "n-1" ? [last] : objects
        for o in lost {
            let error = storeError { try reopened.read(o.id) }
            guard case .corruptObject(let id, _, let reason)? = error else {
                Issue.record("expected corruptObject, got \(String(describing: error))")
                continue
            }
            #expect(id == o.id)
            #expect(reason.contains("truncated"))
        }
        if length == "n-1" {
            f.expectReads(objects.filter { $0.id != last.id }, from: reopened)
        }
    }

    @Test("a pack file that is gone fails reads with an error naming it")
    func missingPackFile() throws {
        let f = try PackFixture()
        let o = TestObject.random(1, size: 100, seed: 9)[0]
        try f.commit([o])
        let (_, packPath) = try f.onlyPack()
        #expect(unlink(packPath) == 0)
        let reopened = try PackStore(directory: f.path)
        let error = storeError { try reopened.read(o.id) }
        #expect(error.map { "\($0)".contains(packPath) } == true, "\(String(describing: error))")
    }

    // MARK: damaged indexes

    enum IndexDamage: String, CaseIterable, Sendable {
        case empty, oneByte, header, headerAndHalfEntry, missingLastByte, missingTrailer, extraByte, garbage
    }

    @Test("a truncated, extended, empty or garbage index fails open and reload with corruptFile naming it",
          arguments: IndexDamage.allCases)
    func damagedIndex(_ damage: IndexDamage) throws {
        let f = try PackFixture()
        let early = try PackStore(directory: f.path)
        try f.commit(TestObject.random(3, size: 100, seed: 10))
        let (indexPath, _) = try f.onlyPack()
        let bytes = try FS.readFile(indexPath)
        let damaged: [UInt8] = switch damage {
        case .empty: []
        case .oneByte: [bytes[0]]
        case .header: Array(bytes.prefix(16))
        case .headerAndHalfEntry: Array(bytes.prefix(16 + 28))
        case .missingLastByte: Array(bytes.dropLast())
        case .missingTrailer: Array(bytes.dropLast(16))
        case .extraByte: bytes + [0]
        case .garbage: splitmix64Bytes(seed: 11, count: bytes.count)
        }
        try PackDamage.writeFile(indexPath, damaged)
        for attempt in ["init", "reload"] {
            let error = storeError {
                if attempt == "init" { _ = try PackStore(directory: f.path) } else { try early.reload() }
            }
            guard case .corruptFile(let path, _)? = error else {
                Issue.record("\(attempt): expected corruptFile, got \(String(describing: error))")
                continue
            }
            #expect(path == indexPath)
            #expect("\(error!)".contains(indexPath))
        }
    }

    @Test("an index with another magic is corruptFile; with a newer version byte, newerFormat")
    func indexMagicAndVersion() throws {
        let f = try PackFixture()
        try f.commit(TestObject.random(2, size: 100, seed: 12))
        let (indexPath, _) = try f.onlyPack()
        let original = try FS.readFile(indexPath)

        var foreign = original
        foreign[0] = UInt8(ascii: "X")
        try PackDamage.writeFile(indexPath, foreign)
        try PackDamage.resealIndex(indexPath)
        let bad = storeError { try PackStore(directory: f.path) }
        guard case .corruptFile(let path, let reason)? = bad else {
            Issue.record("expected corruptFile, got \(String(describing: bad))")
            return
        }
        #expect(path == indexPath)
        #expect(reason.contains("magic"))

        var newer = original
        newer[7] = 2
        try PackDamage.writeFile(indexPath, newer)
        try PackDamage.resealIndex(indexPath)
        let error = storeError { try PackStore(directory: f.path) }
        guard case .newerFormat(let newerPath, let found, let supported)? = error else {
            Issue.record("expected newerFormat, got \(String(describing: error))")
            return
        }
        #expect(newerPath == indexPath)
        #expect(found == 2)
        #expect(supported == 1)
        #expect("\(error!)".contains("Upgrade mlv"))
    }

    @Test("an index with version byte 0 is damaged, not newer")
    func indexVersionZero() throws {
        let f = try PackFixture()
        try f.commit(TestObject.random(2, size: 100, seed: 13))
        let (indexPath, _) = try f.onlyPack()
        var bytes = try FS.readFile(indexPath)
        bytes[7] = 0
        try PackDamage.writeFile(indexPath, bytes)
        try PackDamage.resealIndex(indexPath)
        let error = storeError { try PackStore(directory: f.path) }
        guard case .corruptFile(let path, _)? = error else {
            Issue.record("expected corruptFile, got \(String(describing: error))")
            return
        }
        #expect(path == indexPath)
    }

    enum EntryDamage: String, CaseIterable, Sendable {
        case duplicated, unsorted, unknownKind, countTooHigh
    }

    @Test("an index with valid checksums but bad entries is corruptFile", arguments: EntryDamage.allCases)
    func badEntries(_ damage: EntryDamage) throws {
        let f = try PackFixture()
        try f.commit(TestObject.random(3, size: 100, seed: 14))
        let (indexPath, _) = try f.onlyPack()
        let index = try #require(f.store.packIndexes.first)
        var entries = index.entries
        switch damage {
        case .duplicated: entries.insert(entries[1], at: 1)
        case .unsorted: entries.swapAt(0, 2)
        case .unknownKind: entries[1].kind = .chunk
        case .countTooHigh: break
        }
        try PackDamage.writeIndex(indexPath, entries: entries, packChecksum: index.packChecksum)
        if damage == .unknownKind {
            var bytes = try FS.readFile(indexPath)
            bytes[PackFormat.indexHeaderSize + PackFormat.indexEntrySize + 48] = 9
            try PackDamage.writeFile(indexPath, bytes)
            try PackDamage.resealIndex(indexPath)
        }
        if damage == .countTooHigh {
            var bytes = try FS.readFile(indexPath)
            bytes[8] += 1
            try PackDamage.writeFile(indexPath, bytes)
            try PackDamage.resealIndex(indexPath)
        }
        let error = storeError { try PackStore(directory: f.path) }
        guard case .corruptFile(let path, let reason)? = error else {
            Issue.record("expected corruptFile, got \(String(describing: error))")
            return
        }
        #expect(path == indexPath)
        switch damage {
        case .duplicated, .unsorted: #expect(reason.contains("sorted or duplicated"))
        case .unknownKind: #expect(reason.contains("kind 9"))
        case .countTooHigh: #expect(reason.contains("count"))
        }
    }

    @Test("a compressed record claiming a size deflate cannot reach fails the read without allocating it")
    func forgedRawLength() throws {
        let f = try PackFixture()
        let o = TestObject.text(size: 20_000, seed: 40)
        try f.commit([o], compression: .always)
        let (indexPath, packPath) = try f.onlyPack()
        let index = try #require(f.store.packIndexes.first)
        var entries = index.entries
        #expect(entries[0].isCompressed)
        // Record header and index agree on a 4 GiB size, as a hostile writer would make them.
        entries[0].rawLength = Int(UInt32.max)
        try PackDamage.writeIndex(indexPath, entries: entries, packChecksum: index.packChecksum)
        var pack = try PackDamage.readFile(packPath)
        for i in 0..<4 { pack[entries[0].offset + 40 + i] = 0xFF }
        try PackDamage.writeFile(packPath, pack)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peakBefore = usage.ru_maxrss  // KiB
        let error = storeError { try PackStore(directory: f.path).read(o.id) }
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #expect(usage.ru_maxrss - peakBefore < 512 << 10, "the read allocated the forged size")
        guard case .corruptObject(let id, _, let reason)? = error else {
            Issue.record("expected corruptObject, got \(String(describing: error))")
            return
        }
        #expect(id == o.id && reason.contains("decompress"))
    }

    @Test("index entries pointing past the pack or at another record fail the read, not the process")
    func misleadingOffsets() throws {
        let f = try PackFixture()
        let objects = TestObject.random(2, size: 500, seed: 15)
        try f.commit(objects)
        let (indexPath, _) = try f.onlyPack()
        let index = try #require(f.store.packIndexes.first)
        var entries = index.entries
        // The first entry points far past the end; the second at the first's record,
        // which has the same lengths but another id.
        entries[1].offset = entries[0].offset
        entries[0].offset = 1 << 40
        try PackDamage.writeIndex(indexPath, entries: entries, packChecksum: index.packChecksum)
        let reopened = try PackStore(directory: f.path)
        for e in entries {
            let error = storeError { try reopened.read(e.id) }
            guard case .corruptObject(let id, _, _)? = error else {
                Issue.record("expected corruptObject, got \(String(describing: error))")
                continue
            }
            #expect(id == e.id)
        }
    }

    // MARK: uncommitted and interrupted writes

    @Test("an uncommitted writer leaves nothing visible; abort leaves no index or temp file")
    func uncommittedWriter() throws {
        let f = try PackFixture()
        let kept = TestObject.random(2, size: 100, seed: 16)
        try f.commit(kept)
        let filesBefore = try f.files()

        let objects = TestObject.random(30, size: 1000, seed: 17)
        let w = f.writer(targetSize: 8 << 10)
        for o in objects { try w.put(o.id, kind: o.kind, bytes: o.bytes, compression: .never) }
        #expect(objects.allSatisfy { w.has($0.id) })
        let fresh = try PackStore(directory: f.path)
        for store in [f.store, fresh] {
            #expect(objects.allSatisfy { !store.contains($0.id) })
            #expect(try store.packNames().count == 1)
        }
        #expect(try f.files().filter { $0.hasSuffix(".idx") } == filesBefore.filter { $0.hasSuffix(".idx") })

        w.abort()
        let left = try f.files().filter { !filesBefore.contains($0) }
        #expect(left.allSatisfy { $0.hasPrefix("pack-") && $0.hasSuffix(".pack") },
                "after abort only unindexed packs may remain, found \(left)")
        let afterAbort = try PackStore(directory: f.path)
        #expect(objects.allSatisfy { !afterAbort.contains($0.id) })
        f.expectReads(kept, from: afterAbort)
    }

    @Test("a pack whose index never arrived is invisible and harmless")
    func packWithoutIndex() throws {
        let f = try PackFixture()
        let kept = TestObject.random(2, size: 100, seed: 18)
        try f.commit(kept)
        let lost = TestObject.random(3, size: 100, seed: 19)
        try f.commit(lost)
        // Undo the last step of the commit: the index goes back to its temp name.
        let lostPack = try #require(f.store.packIndexes.first { $0.find(lost[0].id) != nil })
        #expect(rename(lostPack.indexPath, lostPack.indexPath + ".tmp") == 0)
        let reopened = try PackStore(directory: f.path)
        #expect(try reopened.packNames().count == 1)
        #expect(lost.allSatisfy { !reopened.contains($0.id) })
        f.expectReads(kept, from: reopened)
        // Committing the same objects again makes them visible.
        let w = reopened.writer()
        for o in lost { #expect(try w.put(o.id, kind: o.kind, bytes: o.bytes, compression: .never) > 0) }
        try w.commit()
        f.expectReads(kept + lost, from: try PackStore(directory: f.path))
    }

    // MARK: crashes, shown in a child process

    // A child exits 0 when the body returns and 3 when it throws; a trap shows as a signal.
    // The parent owns the directory, so it is removed even when the child crashes.

    @Test("an empty object with .always compression is stored")
    func emptyObjectAlwaysCompressed() async throws {
        let directory = try TemporaryDirectory(prefix: "mlv-exit")
        await #expect(processExitsWith: .success) { [path = directory.path as String] in
            exitWithOutcome {
                let store = try PackStore(directory: path)
                let writer = store.writer()
                let empty: [UInt8] = []
                try writer.put(SHA256.hash(empty), kind: .tree, bytes: empty, compression: .always)
                try writer.commit()
                guard try store.read(SHA256.hash(empty)).bytes == empty else { throw PackDamage.Failure(description: "read back other bytes") }
            }
        }
    }

    @Test("an index entry offset above Int.max fails cleanly, not with a crash")
    func hugeIndexOffset() async throws {
        let directory = try TemporaryDirectory(prefix: "mlv-exit")
        await #expect(processExitsWith: .success) { [path = directory.path as String] in
            exitWithOutcome {
                let store = try PackStore(directory: path)
                let writer = store.writer()
                let bytes: [UInt8] = Array("hostile".utf8)
                try writer.put(SHA256.hash(bytes), kind: .chunk, bytes: bytes, compression: .never)
                try writer.commit()
                let index = store.packIndexes[0]
                var raw = try FS.readFile(index.indexPath)
                raw[PackFormat.indexHeaderSize + 32 + 7] = 0x80
                try PackDamage.writeFile(index.indexPath, raw)
                try PackDamage.resealIndex(index.indexPath)
                // Either outcome is fine: the index refused, or the read failing cleanly.
                do {
                    let reopened = try PackStore(directory: path)
                    _ = try? reopened.read(SHA256.hash(bytes))
                } catch StoreError.corruptFile {}
            }
        }
    }

    @Test("a read-only index temp file left by a crash does not block committing the same pack again")
    func leftoverIndexTempFile() async throws {
        let directory = try TemporaryDirectory(prefix: "mlv-exit")
        await #expect(processExitsWith: .success) { [path = directory.path as String] in
            exitWithOutcome {
                // File modes bind only unprivileged users: as root, become nobody first.
                if geteuid() == 0 {
                    guard chown(path, 65534, 65534) == 0, setgid(65534) == 0, setuid(65534) == 0 else {
                        throw PackDamage.Failure(description: "cannot become nobody")
                    }
                }
                let bytes = Array("the same pack, twice".utf8)
                func commitOnce(_ store: PackStore) throws {
                    let writer = store.writer()
                    try writer.put(SHA256.hash(bytes), kind: .chunk, bytes: bytes, compression: .never)
                    try writer.commit()
                }
                let store = try PackStore(directory: path)
                try commitOnce(store)
                // A crash between writing the index and renaming it leaves it under its temp name.
                let indexPath = store.packIndexes[0].indexPath
                guard rename(indexPath, indexPath + ".tmp") == 0 else { throw PackDamage.Failure(description: "rename") }
                let again = try PackStore(directory: path)
                try commitOnce(again)
                guard again.contains(SHA256.hash(bytes)) else { throw PackDamage.Failure(description: "not visible") }
            }
        }
    }
}

extension InjectedFaultTests {
    @Test("failing the n-th open, write, fsync or rename of a commit never damages the store",
          arguments: [EIO, ENOSPC])
    func failEachStepOfACommit(code: Int32) throws {
        let f = try PackFixture()
        let directory = f.path
        let base = TestObject.random(10, size: 700, seed: 30)
        try f.commit(base, targetSize: 4 << 10)
        let fresh = TestObject.random(12, size: 900, seed: 31) + [TestObject.text(size: 5000, seed: 32)]

        var failures = 0
        var n = 1
        while n < 1000 {
            let store = try PackStore(directory: directory)
            let writer = PackWriter(store: store, directory: directory, targetSize: 4 << 10)
            let seen = AtomicCounter(), fired = AtomicCounter()
            let step = n
            var thrown: Error?
            FaultInjection.withHook({ op, path in
                guard InjectedFaultTests.packCommitOperations.contains(op), InjectedFaultTests.isInside(path, directory) else { return nil }
                guard seen.add(1) == step else { return nil }
                fired.add(1)
                return code
            }) {
                do {
                    for o in fresh { try writer.put(o.id, kind: o.kind, bytes: o.bytes, compression: .auto) }
                    try writer.commit()
                } catch {
                    thrown = error
                    writer.abort()
                }
            }

            if fired.current == 0 {
                #expect(thrown == nil, "no fault injected, yet: \(String(describing: thrown))")
                break
            }
            failures += 1
            if case .io(let e)? = thrown as? StoreError {
                #expect(e.errno == code, "step \(n): \(e)")
            } else {
                Issue.record("step \(n): expected StoreError.io, got \(String(describing: thrown))")
            }
            // A fresh store opens, keeps everything committed before, and whatever new
            // objects became visible read back whole.
            let reopened: PackStore
            do {
                reopened = try PackStore(directory: directory)
            } catch {
                Issue.record("step \(n): the store no longer opens: \(error)")
                return
            }
            f.expectReads(base, from: reopened)
            f.expectReads(fresh.filter { reopened.contains($0.id) }, from: reopened)
            n += 1
        }
        #expect(failures >= 20, "only \(failures) steps could be failed")
        f.expectReads(base + fresh, from: try PackStore(directory: directory))
    }

    @Test("a commit whose index rename fails leaves the store as it was")
    func failedIndexRename() throws {
        let f = try PackFixture()
        let base = TestObject.random(3, size: 300, seed: 33)
        try f.commit(base)
        let directory = f.path
        let lost = TestObject.random(3, size: 300, seed: 34)
        let writer = f.writer()
        try FaultInjection.withHook({ op, path in
            op == .rename && InjectedFaultTests.isInside(path, directory) && path.hasSuffix(".idx") ? EIO : nil
        }) {
            for o in lost { try writer.put(o.id, kind: o.kind, bytes: o.bytes, compression: .never) }
            #expect(throws: StoreError.self) { try writer.commit() }
        }

        // No abort: as after a crash, the pack is in place and its index is not.
        let files = try f.files()
        #expect(files.filter { $0.hasSuffix(".pack") }.count == 2)
        #expect(files.filter { $0.hasSuffix(".idx.tmp") }.count == 1)
        let reopened = try PackStore(directory: directory)
        #expect(try reopened.packNames().count == 1)
        #expect(lost.allSatisfy { !reopened.contains($0.id) && !f.store.contains($0.id) })
        f.expectReads(base, from: reopened)
    }

    @Test("each pack is fsynced before its index is renamed into place, and the directory last")
    func durabilityOrder() throws {
        let f = try PackFixture()
        let directory = f.path
        let log = Locked<[(op: FSOperation, name: String)]>([])
        let objects = TestObject.random(12, size: 1000, seed: 35)
        let writer = f.writer(targetSize: 4 << 10)
        // withHook, not install: install's one global slot is shared with tests running
        // at the same time, and their install(nil) removed this hook mid-commit.
        try FaultInjection.withHook({ op, path in
            if InjectedFaultTests.isInside(path, directory), op != .open, op != .read {
                log.withLock { $0.append((op, path == directory ? "." : FS.baseName(of: path))) }
            }
            return nil
        }) {
            for o in objects { try writer.put(o.id, kind: o.kind, bytes: o.bytes, compression: .never) }
            try writer.commit()
        }

        let events = log.withLock { $0 }
        let names = try f.store.packNames()
        #expect(names.count >= 3)
        func position(_ op: FSOperation, _ name: String) throws -> Int {
            try #require(events.firstIndex { $0.op == op && $0.name == name }, "no \(op) of \(name)")
        }
        for name in names {
            let packRename = try position(.rename, "pack-\(name).pack")
            let packSync = try #require(events[..<packRename].lastIndex { $0.op == .fsync && $0.name.hasPrefix(".pack.tmp-") },
                                        "pack-\(name).pack renamed without an fsync before")
            let temp = events[packSync].name
            #expect(!events[packSync...].contains { $0.op == .write && $0.name == temp }, "\(temp) written after its fsync")
            let indexTemp = "pack-\(name).idx.tmp"
            let indexWrite = try #require(events.lastIndex { $0.op == .write && $0.name == indexTemp })
            let indexSync = try position(.fsync, indexTemp)
            let indexRename = try position(.rename, "pack-\(name).idx")
            #expect(packSync < packRename)
            #expect(packRename < indexWrite)
            #expect(indexWrite < indexSync)
            #expect(indexSync < indexRename)
        }
        let directorySync = try #require(events.lastIndex { $0.op == .fsyncDirectory && $0.name == "." })
        #expect(directorySync == events.count - 1, "after the directory fsync: \(events[(directorySync + 1)...].map { "\($0.op) \($0.name)" })")
        let renames = events.indices.filter { events[$0].op == .rename && events[$0].name.hasSuffix(".idx") }
        #expect(renames.count == names.count)
        #expect(renames.allSatisfy { $0 < directorySync })
    }
}

extension PackStoreTests {
    /// Opening the store takes no lock, so a gc may copy a pack's live objects into a new
    /// pack and delete the old one between the open's directory listing and its open of
    /// that index: the open lists again (finding the new pack) instead of failing with
    /// ENOENT, which `mlv` reported as an I/O error (exit 1) under load.
    @Test("an index deleted between listing and opening is listed again, not an error")
    func indexVanishingDuringOpen() throws {
        let f = try PackFixture()
        let moved = TestObject.random(4, size: 800, seed: 40)
        try f.commit(moved)
        let doomed = try f.onlyPack()
        let other = TestObject.random(3, size: 700, seed: 41)
        try f.commit(other)
        let extra = TestObject.random(1, size: 600, seed: 42)
        // The pack gc would write: the moved objects and one more, built elsewhere.
        let copies = try PackFixture()
        try copies.commit(moved + extra)
        let copied = try copies.onlyPack()

        let fired = AtomicCounter()
        let directory = f.path
        let store = try FaultInjection.withHook({ op, path in
            // What a gc does in that moment: commit the copies, then delete the old pack.
            guard op == .open, path == doomed.index, fired.add(1) == 1 else { return nil }
            do {
                try FS.atomicWrite(directory + "/" + FS.baseName(of: copied.pack), FS.readFile(copied.pack))
                try FS.atomicWrite(directory + "/" + FS.baseName(of: copied.index), FS.readFile(copied.index))
                try FS.unlink(doomed.index)
                try FS.unlink(doomed.pack)
            } catch {
                Issue.record("simulating gc: \(error)")
            }
            return nil
        }) {
            try PackStore(directory: directory)
        }
        #expect(fired.current >= 1, "the open never reached the doomed index")
        #expect(!FS.exists(doomed.index))
        f.expectReads(moved + other + extra, from: store)
    }

    /// An index that stays listed and cannot be opened is still an error.
    @Test("an index that stays listed but cannot be opened is still an error")
    func unreadableIndexStillFails() throws {
        let f = try PackFixture()
        try f.commit(TestObject.random(2, size: 500, seed: 43))
        let index = try f.onlyPack().index
        #expect(throws: StoreError.self) {
            try FaultInjection.withHook({ op, path in op == .open && path == index ? ENOENT : nil }) {
                try PackStore(directory: f.path)
            }
        }
    }
}
