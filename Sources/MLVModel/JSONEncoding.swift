// Canonical and pretty encoding of `JSON`. The canonical rules are part of the on-disk
// format and are written down on `JSON` in JSON.swift; keep the two in step.

extension JSON {
    /// The canonical encoding: the bytes whose SHA-256 identifies a manifest, tree or event.
    public func canonicalBytes() -> [UInt8] {
        var out: [UInt8] = []
        encodeCanonical(into: &out)
        return out
    }

    /// Appends the canonical encoding to `out`. Never fails: non-finite doubles are written `null`.
    public func encodeCanonical(into out: inout [UInt8]) {
        switch self {
        case .null:
            JSON.appendASCII("null", to: &out)
        case .bool(let b):
            JSON.appendASCII(b ? "true" : "false", to: &out)
        case .int(let i):
            JSON.appendInt(i, to: &out)
        case .double(let d):
            JSON.appendDouble(d, to: &out)
        case .string(let s):
            JSON.appendEscapedString(s, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (n, element) in elements.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                element.encodeCanonical(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (n, member) in JSON.sortedMembers(members).enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                JSON.appendEscapedString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                member.value.encodeCanonical(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// The value as indented text for people, keys in canonical order.
    ///
    /// Scalars and strings are written as in the canonical form; non-empty containers put
    /// one element per line, indented by `indent` spaces per level; a member is written
    /// `"key": value`; empty containers are `[]` and `{}`. The result parses back to an
    /// equal value. No trailing newline.
    public func prettyString(indent: Int = 2) -> String {
        var out: [UInt8] = []
        appendPretty(to: &out, indent: max(0, indent), level: 0)
        return String(decoding: out, as: UTF8.self)
    }

    private func appendPretty(to out: inout [UInt8], indent: Int, level: Int) {
        func newline(_ level: Int) {
            out.append(UInt8(ascii: "\n"))
            out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * level))
        }
        switch self {
        case .array(let elements) where !elements.isEmpty:
            out.append(UInt8(ascii: "["))
            for (n, element) in elements.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                newline(level + 1)
                element.appendPretty(to: &out, indent: indent, level: level + 1)
            }
            newline(level)
            out.append(UInt8(ascii: "]"))
        case .object(let members) where !members.isEmpty:
            out.append(UInt8(ascii: "{"))
            for (n, member) in JSON.sortedMembers(members).enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                newline(level + 1)
                JSON.appendEscapedString(member.key, to: &out)
                out.append(UInt8(ascii: ":"))
                out.append(UInt8(ascii: " "))
                member.value.appendPretty(to: &out, indent: indent, level: level + 1)
            }
            newline(level)
            out.append(UInt8(ascii: "}"))
        default:
            encodeCanonical(into: &out)
        }
    }
}

// MARK: - Low-level writers

extension JSON {
    /// Appends `s` as a canonical JSON string, quotes included.
    ///
    /// For writing large documents directly, without building `JSON` values first.
    public static func appendEscapedString(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { appendEscapedUTF8($0, to: &out) }
    }

    /// Appends `v` in canonical form: plain decimal, `-` for negatives.
    public static func appendInt(_ v: Int64, to out: inout [UInt8]) {
        if v < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = v.magnitude
        // 20 digits hold UInt64.max; fill from the right, then copy the used tail.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = 20
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude != 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start..<20]))
        }
    }

    static func appendDouble(_ d: Double, to out: inout [UInt8]) {
        if !d.isFinite {
            appendASCII("null", to: &out)
        } else if d == 0 {
            appendASCII("0.0", to: &out)  // also for -0.0
        } else {
            // Swift's description is the shortest round-trip form and always has a "." or
            // an "e" for finite values ("1.0", "1e-05", "1e+16").
            out.append(contentsOf: d.description.utf8)
        }
    }

    static func appendASCII(_ s: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    static func appendEscapedUTF8(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        guard let base = bytes.baseAddress else {
            out.append(UInt8(ascii: "\""))
            return
        }
        var runStart = 0
        var k = 0
        while true {
            // Skip eight bytes at a time while none needs escaping.
            while k + 8 <= bytes.count
                && !JSON.wordHasQuoteBackslashOrControl(UnsafeRawPointer(base + k).loadUnaligned(as: UInt64.self))
            {
                k += 8
            }
            guard k < bytes.count else { break }
            let c = bytes[k]
            k += 1
            if c >= 0x20 && c != UInt8(ascii: "\"") && c != UInt8(ascii: "\\") { continue }
            let escapeAt = k - 1
            if runStart < escapeAt {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<escapeAt]))
            }
            runStart = k
            out.append(UInt8(ascii: "\\"))
            switch c {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x09: out.append(UInt8(ascii: "t"))
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0C: out.append(UInt8(ascii: "f"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            default:
                appendASCII("u00", to: &out)
                out.append(lowerHexDigit(c >> 4))
                out.append(lowerHexDigit(c & 0xF))
            }
        }
        if runStart < bytes.count {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Whether any of the eight bytes in `word` is a quote, a backslash or below 0x20 (SWAR: each test
    /// is exact as a yes/no even though the per-byte flags can spill into higher bytes).
    @inline(__always)
    static func wordHasQuoteBackslashOrControl(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let zeroInQuote = (quote &- ones) & ~quote
        let zeroInBackslash = (backslash &- ones) & ~backslash
        let belowSpace = (word &- ones &* 0x20) & ~word
        return (zeroInQuote | zeroInBackslash | belowSpace) & highs != 0
    }

    private static func lowerHexDigit(_ v: UInt8) -> UInt8 {
        v < 10 ? UInt8(ascii: "0") + v : UInt8(ascii: "a") + (v - 10)
    }

    /// Members in canonical order: byte-wise by the keys' UTF-8.
    static func sortedMembers(_ members: [String: JSON]) -> [(prefix: UInt64, key: String, value: JSON)] {
        // Compare the keys' first eight bytes as one integer, and the whole keys only
        // when those are equal. A zero-padded prefix that is strictly smaller belongs to a
        // key that is strictly smaller, a shorter key with the same bytes included.
        var entries: [(prefix: UInt64, key: String, value: JSON)] = []
        entries.reserveCapacity(members.count)
        for (key, value) in members {
            var key = key
            let prefix = key.withUTF8 { bytes in
                var word: UInt64 = 0
                for n in 0..<8 {
                    word <<= 8
                    if n < bytes.count { word |= UInt64(bytes[n]) }
                }
                return word
            }
            entries.append((prefix, key, value))
        }
        entries.sort { a, b in
            a.prefix != b.prefix ? a.prefix < b.prefix : utf8Precedes(a.key, b.key)
        }
        return entries
    }

    static func utf8Precedes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { ab in b.withUTF8 { bb in ab.lexicographicallyPrecedes(bb) } }
    }
}
