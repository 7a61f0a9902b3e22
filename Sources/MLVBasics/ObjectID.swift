/// The identity of a stored thing: the SHA-256 of its bytes.
///
/// A blob's id is the SHA-256 of the file's raw bytes, the same hex `sha256sum` prints.
/// Trees and manifests are identified by the SHA-256 of their canonical JSON encoding.
public struct ObjectID: Hashable, Comparable, Sendable, CustomStringConvertible {
    // Four words so equality and hashing touch 32 bytes without indirection.
    public var w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64

    public static let byteCount = 32

    /// Builds an id from exactly 32 digest bytes (big-endian word order).
    public init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count == 32, "an object id is 32 bytes")
        func word(_ i: Int) -> UInt64 {
            UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
        }
        w0 = word(0); w1 = word(1); w2 = word(2); w3 = word(3)
    }

    public init<C: Collection>(digest: C) where C.Element == UInt8 {
        let array = Array(digest)
        self = array.withUnsafeBytes { ObjectID(bytes: $0) }
    }

    /// Parses 64 lowercase or uppercase hex digits; nil for anything else.
    public init?(hex: some StringProtocol) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 64 else { return nil }
        var words: [UInt64] = [0, 0, 0, 0]
        for (i, c) in utf8.enumerated() {
            guard let v = Hex.value(of: c) else { return nil }
            words[i / 16] = words[i / 16] << 4 | UInt64(v)
        }
        w0 = words[0]; w1 = words[1]; w2 = words[2]; w3 = words[3]
    }

    /// The 32 digest bytes.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBytes { write(to: $0.baseAddress!) }
        return out
    }

    /// Writes the 32 digest bytes at `pointer`.
    public func write(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: w0.bigEndian, toByteOffset: 0, as: UInt64.self)
        pointer.storeBytes(of: w1.bigEndian, toByteOffset: 8, as: UInt64.self)
        pointer.storeBytes(of: w2.bigEndian, toByteOffset: 16, as: UInt64.self)
        pointer.storeBytes(of: w3.bigEndian, toByteOffset: 24, as: UInt64.self)
    }

    /// Appends the 64 lowercase hex digits to `out`.
    public func appendHex(to out: inout [UInt8]) {
        for w in [w0, w1, w2, w3] {
            for j in 0..<16 {
                out.append(Hex.digits[Int((w >> UInt64(60 - 4 * j)) & 0xF)])
            }
        }
    }

    public var hex: String {
        var chars: [UInt8] = []
        chars.reserveCapacity(64)
        appendHex(to: &chars)
        return String(decoding: chars, as: UTF8.self)
    }

    /// The first twelve hex digits, for people.
    public var short: String { String(hex.prefix(12)) }

    public var description: String { hex }

    public static func < (a: ObjectID, b: ObjectID) -> Bool {
        (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3)
    }

    /// True when the hex form starts with `prefix` (lowercase hex digits).
    public func hasHexPrefix(_ prefix: String) -> Bool {
        hex.hasPrefix(prefix)
    }
}

/// Hex digits, both ways.
public enum Hex {
    public static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    @inline(__always)
    public static func value(of c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// True for a non-empty string of lowercase hex digits.
    @inlinable
    public static func isLowerHex(_ s: some StringProtocol) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
