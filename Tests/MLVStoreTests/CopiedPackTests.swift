import MLVBasics
import MLVTestSupport
import Testing

@testable import MLVStore

@Suite("CopiedPack")
struct CopiedPackTests {
    /// The bytes of a copied pack, as a remote would write them: the magic, then its runs.
    func bytes(of pack: CopiedPack) throws -> [UInt8] {
        var out = PackFormat.packMagic
        for run in pack.runs {
            var b = [UInt8](repeating: 0, count: run.length)
            let n = try b.withUnsafeMutableBytes { try FS.pread(run.fd, into: $0, at: run.offset, path: run.path) }
            #expect(n == run.length)
            out += b
        }
        return out
    }

    /// Every record of `store`, in the order it sits in its packs.
    func records(_ store: PackStore) -> [(PackIndex, IndexEntry)] {
        store.packIndexes.flatMap { i in i.entries.sorted { $0.offset < $1.offset }.map { (i, $0) } }
    }

    /// Records copied from one store into a new pack: the pack opens and reads back in
    /// another store, neighbouring records are one run, and the same records give the
    /// same bytes and name every time.
    @Test func aCopiedPackIsAValidPackAndDeterministic() throws {
        let source = try PackFixture()
        let objects = TestObject.random(20, size: 3000, seed: 5) + [TestObject.text(size: 20_000, seed: 1)]
        try source.commit(Array(objects[0..<10]), compression: .auto)
        try source.commit(Array(objects[10...]), compression: .auto)
        #expect(source.store.packIndexes.count == 2)
        let one = try source.store.copyPack(records(source.store))
        let two = try source.store.copyPack(records(source.store))
        #expect(one.runs.count == 2 && one.count == objects.count)
        let pack = try bytes(of: one), again = try bytes(of: two)
        #expect(one.name == two.name && pack == again && one.index == two.index && pack.count == one.size)
        #expect(SHA256.hash(Array(one.index.dropLast(8))).hex == one.name)

        let target = try PackFixture()
        try FS.atomicWrite(target.path + "/pack-\(one.name).pack", pack)
        try FS.atomicWrite(target.path + "/pack-\(one.name).idx", one.index)
        try target.store.reload()
        target.expectReads(objects)
        // A part of the records, from the middle of a pack, is a valid pack too.
        let some = Array(records(source.store)[3..<7])
        let part = try source.store.copyPack(some)
        let partBytes = try bytes(of: part)
        #expect(part.runs.count == 1 && part.size == partBytes.count)
    }

    /// A record damaged in its local pack is named by id and no pack is planned.
    @Test func aDamagedLocalRecordIsNamedNotCopied() throws {
        let f = try PackFixture()
        let objects = TestObject.random(3, size: 800, seed: 3)
        try f.commit(objects)
        let (_, packPath) = try f.onlyPack()
        let all = records(f.store)
        var pack = try FS.readFile(packPath)
        pack[all[1].1.offset + PackFormat.recordHeaderSize + 10] ^= 1
        try FS.atomicWrite(packPath, pack)
        f.store.closeDescriptors()
        do {
            _ = try f.store.copyPack(all)
            Issue.record("a damaged record was copied")
        } catch let e as StoreError {
            #expect(e.description.contains(all[1].1.id.hex) && e.description.contains("checksum"))
        }
    }

    @Test func checkRecordNamesTheObjectAndWhatIsWrong() throws {
        let f = try PackFixture()
        let o = TestObject.random(1, size: 500, seed: 8)[0]
        try f.commit([o])
        let index = f.store.packIndexes[0]
        let entry = index.entries[0]
        let pack = try FS.readFile(index.packPath)
        var record = Array(pack[entry.offset..<(entry.offset + PackFormat.recordHeaderSize + entry.storedLength)])
        #expect(try record.withUnsafeBytes { try PackFormat.checkRecord($0, entry, source: "r") } == o.bytes)
        record[PackFormat.recordHeaderSize + 7] ^= 1
        #expect(throws: StoreError.self) { try record.withUnsafeBytes { try PackFormat.checkRecord($0, entry, source: "r") } }
        // A payload that passes its checksum but not its hash.
        var stored = o.bytes
        stored[0] ^= 1
        do {
            _ = try PackFormat.decodePayload(stored, entry, source: "remote/packs/x.pack")
            Issue.record("a payload that does not hash to its id was accepted")
        } catch let e as StoreError {
            #expect(e.description.contains(o.id.hex) && e.description.contains("remote/packs/x.pack"))
        }
    }
}
