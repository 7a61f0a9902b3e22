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
    var a = a, b = b
    return a.withUTF8 { pa in
        b.withUTF8 { pb in
            let n = Swift.min(pa.count, pb.count)
            if n > 0 {
                let c = memcmp(pa.baseAddress!, pb.baseAddress!, n)
                if c != 0 { return c < 0 }
            }
            return pa.count < pb.count
        }
    }
}
