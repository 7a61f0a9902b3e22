import MLVBasics

extension PackFormat {
    /// The bytes of an index over `entries` (sorted by id here) for a pack whose whole-file
    /// XXH3-64 is `packChecksum`, and the pack's name: the SHA-256 hex of the index bytes
    /// before the index checksum.
    public static func encodeIndex(_ entries: [IndexEntry], packChecksum: UInt64) -> (name: String, bytes: [UInt8]) {
        let sorted = entries.sorted { $0.id < $1.id }
        var index: [UInt8] = []
        index.reserveCapacity(indexHeaderSize + sorted.count * indexEntrySize + indexTrailerSize)
        index.append(contentsOf: indexMagic)
        index.appendLE(UInt64(sorted.count))
        for e in sorted { e.append(to: &index) }
        index.appendLE(packChecksum)
        let name = SHA256.hash(index).hex
        index.appendLE(XXHash.xxh3_64(index))
        return (name, index)
    }

    /// Checks one record read from a pack against its index entry (header fields and the
    /// XXH3 checksum of the payload) and returns the stored payload.
    /// - Throws: `StoreError.corruptObject` naming the id and `source`.
    public static func checkRecord(_ record: UnsafeRawBufferPointer, _ entry: IndexEntry, source: String) throws -> [UInt8] {
        let damaged = { (reason: String) in StoreError.corruptObject(entry.id, pack: source, reason: reason) }
        guard record.count == recordHeaderSize + entry.storedLength else { throw damaged("record is truncated") }
        guard record.readID(at: 0) == entry.id, record[32] == entry.kind.rawValue, record[33] == entry.flags,
              Int(record.readLE(UInt32.self, at: 36)) == entry.storedLength,
              Int(record.readLE(UInt32.self, at: 40)) == entry.rawLength else {
            throw damaged("record header does not match the index")
        }
        let payload = UnsafeRawBufferPointer(rebasing: record[recordHeaderSize...])
        guard record.readLE(UInt32.self, at: 44) == UInt32(truncatingIfNeeded: XXHash.xxh3_64(payload)) else {
            throw damaged("record checksum mismatch")
        }
        return Array(payload)
    }

    /// The raw bytes of a stored payload: decompressed to exactly `rawLength` bytes and,
    /// with `verifyHash`, for every kind but chunk lists checked to hash to the id.
    /// - Throws: `StoreError.corruptObject` naming the id and `source`.
    public static func decodePayload(_ stored: [UInt8], _ entry: IndexEntry, source: String, verifyHash: Bool = true) throws -> [UInt8] {
        let raw: [UInt8]
        if entry.isCompressed {
            do { raw = try stored.withUnsafeBytes { try Deflate.decompress($0, expectedSize: entry.rawLength) } }
            catch { throw StoreError.corruptObject(entry.id, pack: source, reason: "does not decompress to \(entry.rawLength) bytes") }
        } else {
            guard stored.count == entry.rawLength else { throw StoreError.corruptObject(entry.id, pack: source, reason: "length mismatch") }
            raw = stored
        }
        if verifyHash { try raw.withUnsafeBytes { try verify(entry.id, entry.kind, $0, pack: source) } }
        return raw
    }
}

/// Builds one pack and its index in memory from records that are already stored
/// (compressed or not), in the order given. The same records in the same order always
/// give the same bytes and so the same name, which lets a retried push recognise a pack
/// that already arrived.
public struct PackBuilder: Sendable {
    public private(set) var pack: [UInt8] = PackFormat.packMagic
    public private(set) var entries: [IndexEntry] = []

    /// - Parameter capacity: the pack's expected size in bytes, reserved up front.
    public init(capacity: Int = 0) {
        pack.reserveCapacity(capacity)
    }

    /// Bytes of the pack so far.
    public var size: Int { pack.count }

    /// Appends a record: `entry` gives id, kind, flags and raw length; `stored` the payload.
    public mutating func append(_ entry: IndexEntry, stored: UnsafeRawBufferPointer) {
        var e = entry
        e.offset = pack.count
        e.storedLength = stored.count
        pack.append(e.id)
        pack.append(e.kind.rawValue)
        pack.append(e.flags)
        pack.append(contentsOf: [0, 0])
        pack.appendLE(UInt32(stored.count))
        pack.appendLE(UInt32(e.rawLength))
        pack.appendLE(UInt32(truncatingIfNeeded: XXHash.xxh3_64(stored)))
        pack.append(contentsOf: stored)
        entries.append(e)
    }

    /// The finished pack: its name, bytes and index bytes.
    public func finish() -> (name: String, pack: [UInt8], index: [UInt8]) {
        let (name, index) = PackFormat.encodeIndex(entries, packChecksum: XXHash.xxh3_64(pack))
        return (name, pack, index)
    }
}
