import CCrypto

/// HMAC-SHA256 (RFC 2104) over OpenSSL's libcrypto (`HMAC()` with `EVP_sha256()`).
public enum HMAC {
    /// The 32-byte HMAC-SHA256 of `message` under `key`.
    public static func sha256(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        key.withUnsafeBytes { k in
            message.withUnsafeBytes { m in
                out.withUnsafeMutableBufferPointer { o in
                    // A non-null pointer even for empty inputs: HMAC() reads none of it then.
                    let zero: UInt8 = 0
                    withUnsafePointer(to: zero) { z in
                        mlv_hmac_sha256(k.baseAddress ?? UnsafeRawPointer(z), Int32(k.count),
                                        m.baseAddress ?? UnsafeRawPointer(z), m.count, o.baseAddress!)
                    }
                }
            }
        }
        return out
    }

    /// HMAC-SHA256 of a UTF-8 string.
    public static func sha256(key: [UInt8], _ message: String) -> [UInt8] {
        sha256(key: key, Array(message.utf8))
    }
}
