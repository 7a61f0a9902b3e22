#if canImport(Glibc)
import Glibc
#endif

/// A fixed-capacity byte buffer aligned to 4096 bytes (`posix_memalign`), as `O_DIRECT`
/// writes require of their memory.
public final class AlignedBuffer: @unchecked Sendable {
    public static let alignment = 4096
    public let base: UnsafeMutableRawPointer
    public let capacity: Int
    public var count = 0

    public init(capacity: Int) {
        var p: UnsafeMutableRawPointer?
        guard posix_memalign(&p, Self.alignment, capacity) == 0, let p else {
            fatalError("out of memory allocating a \(capacity)-byte buffer")
        }
        base = p
        self.capacity = capacity
    }

    deinit { free(base) }

    public var room: Int { capacity - count }

    /// Appends as much of `bytes` as fits; returns how many bytes were taken.
    public func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        let n = min(room, bytes.count)
        if n > 0 { (base + count).copyMemory(from: bytes.baseAddress!, byteCount: n) }
        count += n
        return n
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
}
