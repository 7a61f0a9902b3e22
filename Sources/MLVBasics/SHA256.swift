import CCrypto

/// Incremental SHA-256 over OpenSSL's libcrypto (`SHA256_Init`/`Update`/`Final`).
public struct SHA256: ~Copyable {
    private var context = mlv_sha256_ctx()

    public init() {
        mlv_sha256_init(&context)
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        mlv_sha256_update(&context, base, bytes.count)
    }

    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    public consuming func finalize() -> ObjectID {
        var out = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &out) { raw in
            mlv_sha256_final(&context, raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
            return ObjectID(bytes: UnsafeRawBufferPointer(raw))
        }
    }

    /// Finishes the digest and starts a new one, for holders that cannot consume self.
    public mutating func finalizeAndReset() -> ObjectID {
        var out = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        let id = withUnsafeMutableBytes(of: &out) { raw in
            mlv_sha256_final(&context, raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
            return ObjectID(bytes: UnsafeRawBufferPointer(raw))
        }
        mlv_sha256_init(&context)
        return id
    }

    /// The SHA-256 of `bytes` in one call (`SHA256()`).
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> ObjectID {
        var out = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        return withUnsafeMutableBytes(of: &out) { raw in
            let base = bytes.baseAddress ?? UnsafeRawPointer(raw.baseAddress!)
            mlv_sha256(base, bytes.count, raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
            return ObjectID(bytes: UnsafeRawBufferPointer(raw))
        }
    }

    public static func hash(_ bytes: [UInt8]) -> ObjectID {
        bytes.withUnsafeBytes { hash($0) }
    }
}
