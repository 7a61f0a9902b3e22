import CCrypto

/// MD5 (`MD5()`), used only to derive FastCDC's canonical gear table. Never an id.
public enum MD5 {
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        bytes.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { mlv_md5(raw.baseAddress!, raw.count, $0.baseAddress!) }
        }
        return out
    }
}
