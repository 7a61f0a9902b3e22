import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

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
        try validateRecord(record, entry, source: source)
        return Array(UnsafeRawBufferPointer(rebasing: record[recordHeaderSize...]))
    }

    /// `checkRecord` without copying the payload out.
    /// - Throws: `StoreError.corruptObject` naming the id and `source`.
    public static func validateRecord(_ record: UnsafeRawBufferPointer, _ entry: IndexEntry, source: String) throws {
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

/// A new pack made of records already stored in local pack files, copied byte for byte
/// without passing through memory: the pack magic, then `runs` (neighbouring records of
/// one local pack merged), its index and its name. Holds the local packs open, so a gc
/// that deletes one meanwhile does not take the bytes away; closes them when released.
public final class CopiedPack: @unchecked Sendable {
    /// `length` bytes at `offset` of the open local pack `fd` (`path` names it in errors).
    public struct Run: Sendable, Equatable {
        public let fd: Int32
        public let path: String
        public let offset: Int
        public let length: Int
    }

    public let name: String
    public let index: [UInt8]
    /// Bytes of the whole pack (magic included).
    public let size: Int
    /// The records, in pack order, after the magic.
    public let runs: [Run]
    public let count: Int
    private let descriptors: [Int32]

    init(name: String, index: [UInt8], size: Int, runs: [Run], count: Int, descriptors: [Int32]) {
        self.name = name; self.index = index; self.size = size; self.runs = runs; self.count = count
        self.descriptors = descriptors
    }

    deinit { for fd in descriptors { FS.close(fd) } }
}

extension PackStore {
    /// Plans a pack of `records` (in the order given; each from one of this store's
    /// packs) that can be written by copying ranges of the local pack files. Every
    /// record is checked on the way as a read checks it (header against its index entry,
    /// XXH3 checksum of the payload), reading the local packs through a mapping, and the
    /// new pack's checksum is computed from the same bytes. Nothing is re-hashed with
    /// SHA-256: the local records were verified when they were written.
    /// - Throws: `StoreError.corruptObject` naming a record that fails its checks, `.io`.
    public func copyPack(_ records: [(PackIndex, IndexEntry)]) throws -> CopiedPack {
        var opened: [String: (fd: Int32, file: MappedFile)] = [:]
        var descriptors: [Int32] = []
        do {
            let checksum = XXH3Stream()
            PackFormat.packMagic.withUnsafeBytes { checksum.update($0) }
            var runs: [CopiedPack.Run] = []
            var entries: [IndexEntry] = []
            entries.reserveCapacity(records.count)
            var size = PackFormat.packMagic.count
            for (index, entry) in records {
                let path = index.packPath
                if opened[path] == nil {
                    let fd = try io { try FS.open(path, O_RDONLY) }
                    descriptors.append(fd)
                    opened[path] = (fd, try io { try MappedFile(descriptor: fd, path: path) })
                }
                let (fd, file) = opened[path]!
                let length = PackFormat.recordHeaderSize + entry.storedLength
                guard entry.offset + length <= file.count else {
                    throw StoreError.corruptObject(entry.id, pack: path, reason: "pack is truncated or the index points past it")
                }
                let record = UnsafeRawBufferPointer(rebasing: file.bytes[entry.offset..<(entry.offset + length)])
                try PackFormat.validateRecord(record, entry, source: path)
                checksum.update(record)
                var e = entry
                e.offset = size
                entries.append(e)
                size += length
                if let last = runs.last, last.fd == fd, last.offset + last.length == entry.offset {
                    runs[runs.count - 1] = .init(fd: fd, path: path, offset: last.offset, length: last.length + length)
                } else {
                    runs.append(.init(fd: fd, path: path, offset: entry.offset, length: length))
                }
            }
            let (name, index) = PackFormat.encodeIndex(entries, packChecksum: checksum.digest)
            return CopiedPack(name: name, index: index, size: size, runs: runs, count: records.count, descriptors: descriptors)
        } catch {
            for fd in descriptors { FS.close(fd) }
            throw error
        }
    }
}
