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
