import MLVBasics

/// The byte layout of pack and index files (format 1). `docs/design.md` is the contract.
///
/// Pack file `pack-<name>.pack`:
///
///     "MLVPACK\u{1}"                                8 bytes
///     record*                                        each: header (48 bytes) + stored payload
///       id            32  SHA-256 (blob id for chunk lists)
///       kind           1  ObjectKind
///       flags          1  bit 0: payload is zlib
///       reserved       2  zero
///       storedLength   4  little-endian
///       rawLength      4  little-endian
///       checksum       4  low 32 bits of XXH3-64 of the stored payload
///
/// Index file `pack-<name>.idx` (name = SHA-256 hex of the index bytes before the trailer):
///
///     "MLVIDX\u{0}\u{1}"                            8 bytes
///     count                                          8, little-endian
///     entry* sorted by id                            56 bytes each
///       id 32, offset 8 (of the record header), storedLength 4, rawLength 4,
///       kind 1, flags 1, reserved 6
///     packChecksum                                   8, XXH3-64 of the whole pack file
///     indexChecksum                                  8, XXH3-64 of all index bytes before it
public enum PackFormat {
    public static let packMagic: [UInt8] = Array("MLVPACK".utf8) + [1]
    public static let indexMagic: [UInt8] = Array("MLVIDX".utf8) + [0, 1]
    public static let recordHeaderSize = 48
    public static let indexHeaderSize = 16
    public static let indexEntrySize = 56
    public static let indexTrailerSize = 16
    public static let flagCompressed: UInt8 = 1
    /// Packs roll over to a new file past this size.
    public static let targetPackSize = 256 << 20
    /// No single object may be larger than this (the length fields are 32-bit).
    public static let maxObjectSize = Int(UInt32.max)
}

/// One index entry: where an object's record sits in its pack.
public struct IndexEntry: Sendable, Equatable {
    public var id: ObjectID
    public var offset: Int
    public var storedLength: Int
    public var rawLength: Int
    public var kind: ObjectKind
    public var flags: UInt8

    public var isCompressed: Bool { flags & PackFormat.flagCompressed != 0 }

    func append(to out: inout [UInt8]) {
        out.append(id)
        out.appendLE(UInt64(offset))
        out.appendLE(UInt32(storedLength))
        out.appendLE(UInt32(rawLength))
        out.append(kind.rawValue)
        out.append(flags)
        out.append(contentsOf: [0, 0, 0, 0, 0, 0])
    }
}

/// A pack's index, memory-mapped and searched in place (binary search over sorted ids).
public final class PackIndex: @unchecked Sendable {
    public let name: String
    public let indexPath: String
    public let packPath: String
    public let count: Int
    public let packChecksum: UInt64
    private let file: MappedFile

    /// Maps and checks an index file: magic, size, checksum, sorted unique ids, known kinds.
    /// - Throws: `StoreError.corruptFile` naming the path, or `.io`.
    public init(indexPath: String, packPath: String, name: String) throws {
        self.indexPath = indexPath
        self.packPath = packPath
        self.name = name
        file = try io { try MappedFile(path: indexPath) }
        let b = file.bytes
        let minimum = PackFormat.indexHeaderSize + PackFormat.indexTrailerSize
        guard b.count >= minimum else {
            throw StoreError.corruptFile(path: indexPath, reason: "\(b.count) bytes is shorter than an index")
        }
        guard Array(b[0..<8]) == PackFormat.indexMagic else {
            if Array(b[0..<7]) == Array(PackFormat.indexMagic[0..<7]) && b[7] > PackFormat.indexMagic[7] {
                throw StoreError.newerFormat(path: indexPath, found: Int(b[7]), supported: Int(PackFormat.indexMagic[7]))
            }
            throw StoreError.corruptFile(path: indexPath, reason: "not an mlv index (bad magic)")
        }
        let n = b.readLE(UInt64.self, at: 8)
        guard n < UInt64(Int.max / PackFormat.indexEntrySize),
              b.count == minimum + Int(n) * PackFormat.indexEntrySize else {
            throw StoreError.corruptFile(path: indexPath, reason: "entry count \(n) does not match size \(b.count)")
        }
        count = Int(n)
        let body = b.count - 8
        let stored = b.readLE(UInt64.self, at: body)
        let actual = XXHash.xxh3_64(UnsafeRawBufferPointer(rebasing: b[0..<body]))
        guard stored == actual else {
            throw StoreError.corruptFile(path: indexPath, reason: "index checksum mismatch")
        }
        packChecksum = b.readLE(UInt64.self, at: body - 8)
        var previous: ObjectID?
        for i in 0..<count {
            let base = PackFormat.indexHeaderSize + i * PackFormat.indexEntrySize
            let id = b.readID(at: base)
            if let p = previous, !(p < id) {
                throw StoreError.corruptFile(path: indexPath, reason: "entries not sorted or duplicated at \(id.short)")
            }
            // A crafted offset must not trap; whether the record fits in the pack is checked
            // when it is read, so a truncated pack fails only the records it lost.
            let offset = b.readLE(UInt64.self, at: base + 32)
            guard offset >= UInt64(PackFormat.packMagic.count), offset < UInt64(Int.max / 2) else {
                throw StoreError.corruptFile(path: indexPath, reason: "entry \(id.short) has an impossible offset")
            }
            guard ObjectKind(rawValue: b[base + 48]) != nil else {
                throw StoreError.corruptFile(path: indexPath, reason: "unknown object kind \(b[base + 48]) for \(id.short)")
            }
            previous = id
        }
    }

    @inline(__always)
    private func id(at i: Int) -> ObjectID {
        file.bytes.readID(at: PackFormat.indexHeaderSize + i * PackFormat.indexEntrySize)
    }

    /// The entry at position `i` (0 ..< count).
    public func entry(at i: Int) -> IndexEntry {
        let b = file.bytes
        let base = PackFormat.indexHeaderSize + i * PackFormat.indexEntrySize
        return IndexEntry(
            id: b.readID(at: base),
            offset: Int(b.readLE(UInt64.self, at: base + 32)),
            storedLength: Int(b.readLE(UInt32.self, at: base + 40)),
            rawLength: Int(b.readLE(UInt32.self, at: base + 44)),
            kind: ObjectKind(rawValue: b[base + 48])!,
            flags: b[base + 49])
    }

    /// Binary search for `id`.
    public func find(_ id: ObjectID) -> IndexEntry? {
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            let m = self.id(at: mid)
            if m == id { return entry(at: mid) }
            if m < id { low = mid + 1 } else { high = mid }
        }
        return nil
    }

    public var entries: [IndexEntry] { (0..<count).map(entry(at:)) }
}
