import MLVBasics

/// The derived index's compact binary encoding, shared by the model summaries' states and
/// the event index's listings: integers as LEB128 (negative ones as 0), strings as a
/// length and UTF-8, ids as 32 raw bytes. Decoding it makes no JSON values and parses no hex.
struct CompactWriter {
    var bytes: [UInt8] = []

    mutating func byte(_ b: UInt8) { bytes.append(b) }

    mutating func int(_ n: Int) {
        var v = UInt64(max(0, n))
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    mutating func string(_ s: String) { int(s.utf8.count); bytes += s.utf8 }

    mutating func id(_ id: ObjectID) { bytes += id.bytes }
}

/// Reads `CompactWriter`'s encoding from raw bytes (which must outlive the reader); every
/// read throws `Malformed` past the end or on an integer above `Int32.max`.
struct CompactReader {
    struct Malformed: Error {}
    let base: UnsafeRawBufferPointer
    var at = 0

    init(_ bytes: UnsafeRawBufferPointer) { base = bytes }

    var isAtEnd: Bool { at == base.count }

    mutating func byte() throws -> UInt8 {
        guard at < base.count else { throw Malformed() }
        at += 1
        return base[at - 1]
    }

    mutating func int() throws -> Int {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            let b = try byte()
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { break }
            shift += 7
            if shift > 56 { throw Malformed() }
        }
        guard v <= UInt64(Int32.max) else { throw Malformed() }
        return Int(v)
    }

    /// A string's UTF-8 bytes, where they lie in `base`.
    mutating func stringRange() throws -> Range<Int> {
        let n = try int()
        guard n <= base.count - at else { throw Malformed() }
        defer { at += n }
        return at..<at + n
    }

    mutating func string() throws -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: base[try stringRange()]), as: UTF8.self)
    }

    mutating func id() throws -> ObjectID {
        guard ObjectID.byteCount <= base.count - at else { throw Malformed() }
        defer { at += ObjectID.byteCount }
        return ObjectID(bytes: UnsafeRawBufferPointer(rebasing: base[at..<at + ObjectID.byteCount]))
    }
}
