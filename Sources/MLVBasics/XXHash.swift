import CXXHash

/// XXH3 from libxxhash: fast, not collision resistant. Used only where a collision
/// cannot lose data (pack and index checksums, the stat cache's quick content check).
public enum XXHash {
    public static func xxh3_64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        XXH3_64bits(bytes.baseAddress, bytes.count)
    }

    public static func xxh3_64(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { xxh3_64($0) }
    }

    /// The 128-bit XXH3 of `bytes` as (high, low).
    public static func xxh3_128(_ bytes: UnsafeRawBufferPointer) -> (high: UInt64, low: UInt64) {
        let h = XXH3_128bits(bytes.baseAddress, bytes.count)
        return (h.high64, h.low64)
    }
}

/// Streaming XXH3-64 (`XXH3_64bits_update`), for checksums of files written piecewise.
public final class XXH3Stream {
    private let state: OpaquePointer

    public init() {
        state = XXH3_createState()
        XXH3_64bits_reset(state)
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        XXH3_64bits_update(state, bytes.baseAddress, bytes.count)
    }

    public var digest: UInt64 { XXH3_64bits_digest(state) }

    deinit { XXH3_freeState(state) }
}

/// Streaming XXH3-128 (`XXH3_128bits_update`), for the stat cache's quick check of
/// files processed in windows.
public final class XXH3_128Stream: @unchecked Sendable {
    private let state: OpaquePointer

    public init() {
        state = XXH3_createState()
        XXH3_128bits_reset(state)
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        XXH3_128bits_update(state, bytes.baseAddress, bytes.count)
    }

    public var digest: (high: UInt64, low: UInt64) {
        let h = XXH3_128bits_digest(state)
        return (h.high64, h.low64)
    }

    deinit { XXH3_freeState(state) }
}
