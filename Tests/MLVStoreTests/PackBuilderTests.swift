import MLVBasics
import MLVTestSupport
import Testing

@testable import MLVStore

@Suite("PackBuilder")
struct PackBuilderTests {
    /// Records copied from one store into a built pack: the pack opens and reads back in
    /// another store, and the same records give the same bytes and name every time.
    @Test func aBuiltPackIsAValidPackAndDeterministic() throws {
        let source = try PackFixture()
        let objects = TestObject.random(20, size: 3000, seed: 5) + [TestObject.text(size: 20_000, seed: 1)]
        try source.commit(objects, compression: .auto)
        func build() throws -> (name: String, pack: [UInt8], index: [UInt8]) {
            var b = PackBuilder()
            for index in source.store.packIndexes {
                for e in index.entries.sorted(by: { $0.id < $1.id }) {
                    let stored = try source.store.readRecordForRepack(index, e)
                    stored.withUnsafeBytes { b.append(e, stored: $0) }
                }
            }
            return b.finish()
        }
        let one = try build(), two = try build()
        #expect(one.name == two.name && one.pack == two.pack && one.index == two.index)
        #expect(SHA256.hash(Array(one.index.dropLast(8))).hex == one.name)

        let target = try PackFixture()
        try FS.atomicWrite(target.path + "/pack-\(one.name).pack", one.pack)
        try FS.atomicWrite(target.path + "/pack-\(one.name).idx", one.index)
        try target.store.reload()
        target.expectReads(objects)
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
