/// Little-endian integer reads and writes for mlv's binary formats (pack, index, stat cache).
public extension Array where Element == UInt8 {
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
    @inline(__always)
    func readLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    @inline(__always)
    func readID(at offset: Int) -> ObjectID {
        ObjectID(bytes: UnsafeRawBufferPointer(rebasing: self[offset..<(offset + 32)]))
    }
}
