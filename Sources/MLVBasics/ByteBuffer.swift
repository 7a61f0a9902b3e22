#if canImport(Glibc)
import Glibc
#endif

/// Little-endian integer reads and writes for mlv's binary formats (pack, index, stat cache).
public extension Array where Element == UInt8 {
    @inlinable
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func append(_ id: ObjectID) {
        let start = count
        append(contentsOf: repeatElement(0, count: 32))
        withUnsafeMutableBytes { id.write(to: $0.baseAddress! + start) }
    }
}

public extension UnsafeRawBufferPointer {
    @inlinable @inline(__always)
    func readLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    @inlinable @inline(__always)
    func readID(at offset: Int) -> ObjectID {
        ObjectID(bytes: UnsafeRawBufferPointer(rebasing: self[offset..<(offset + 32)]))
    }
}

/// Byte-wise (UTF-8) ordering of strings, the order mlv sorts names and paths in.
/// Swift's `<` orders by Unicode canonical equivalence instead, which differs for
/// non-ASCII names.
@inlinable
public func utf8Less(_ a: String, _ b: String) -> Bool {
    // Native strings are contiguous UTF-8: compare in place, without copying.
    if let r = a.utf8.withContiguousStorageIfAvailable({ pa in
        b.utf8.withContiguousStorageIfAvailable { pb -> Bool in
            let n = Swift.min(pa.count, pb.count)
            if n > 0 {
                let c = memcmp(pa.baseAddress!, pb.baseAddress!, n)
                if c != 0 { return c < 0 }
            }
            return pa.count < pb.count
        }
    }), let r { return r }
    return a.utf8.lexicographicallyPrecedes(b.utf8)
}

/// The indexes of `names` in UTF-8 byte order. Sorts on each name's first eight bytes
/// as a big-endian integer and compares whole names only when those tie, which for a
/// directory listing is nearly never: ~10x cheaper than comparing strings throughout.
public func indicesInUTF8Order(_ names: [String]) -> [Int] {
    var keyed: [(key: UInt64, index: Int)] = []
    keyed.reserveCapacity(names.count)
    for (i, name) in names.enumerated() {
        var key: UInt64 = 0
        var taken = 0
        for byte in name.utf8 {
            key = key << 8 | UInt64(byte)
            taken += 1
            if taken == 8 { break }
        }
        key <<= UInt64(8 * (8 - taken))
        keyed.append((key, i))
    }
    keyed.sort { a, b in
        if a.key != b.key { return a.key < b.key }
        return utf8Less(names[a.index], names[b.index])
    }
    return keyed.map(\.index)
}
