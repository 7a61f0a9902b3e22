// The strict JSON parser. What it accepts and rejects is written down on `JSON` in JSON.swift.

/// Why a byte sequence is not acceptable JSON, and the byte offset where that was found.
public struct JSONError: Error, CustomStringConvertible, Equatable {
    /// What is wrong, e.g. `duplicate key "name"`.
    public var message: String
    /// Offset of the offending byte (or of the start of the offending token) in the input.
    public var offset: Int

    public init(message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    public var description: String { "invalid JSON at byte offset \(offset): \(message)" }
}

extension JSON {
    /// Parses one JSON value that must make up all of `bytes` (whitespace aside).
    ///
    /// `maxDepth` bounds nesting of arrays and objects; the parser recurses once per level,
    /// so keep it modest. Throws `JSONError` naming the byte offset of the first problem.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 64) throws(JSONError) -> JSON {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw JSONError(message: "empty input", offset: 0)
        }
        var parser = JSONParser(
            bytes: base.assumingMemoryBound(to: UInt8.self), count: bytes.count, maxDepth: maxDepth)
        return try parser.parseDocument()
    }

    /// Parses one JSON value that must make up all of `bytes` (whitespace aside).
    ///
    /// Throws `JSONError` naming the byte offset of the first problem.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws(JSONError) -> JSON {
        // withUnsafeBytes is rethrows, which would erase the error type; carry it out by hand.
        let result: Result<JSON, JSONError> = bytes.withUnsafeBytes { buffer in
            do throws(JSONError) {
                return .success(try parse(buffer, maxDepth: maxDepth))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}

/// Recursive descent over a byte buffer. Arrays and objects collect their elements on
/// shared scratch stacks so each container is allocated once at its final size.
private struct JSONParser {
    let p: UnsafePointer<UInt8>
    let count: Int
    let maxDepth: Int
    var i = 0
    var depth = 0
    var elementStack: [JSON] = []
    var memberStack: [(key: String, value: JSON)] = []
    var keyOffsets: [Int] = []
    var unescaped: [UInt8] = []

    init(bytes: UnsafePointer<UInt8>, count: Int, maxDepth: Int) {
        self.p = bytes
        self.count = count
        self.maxDepth = maxDepth
    }

    mutating func parseDocument() throws(JSONError) -> JSON {
        skipWhitespace()
        if i == count { throw JSONError(message: "empty input", offset: i) }
        let value = try parseValue()
        skipWhitespace()
        if i != count { throw fail("trailing data after the JSON value: \(describeByte(at: i))") }
        return value
    }

    // MARK: Tokens

    func fail(_ message: String, at offset: Int? = nil) -> JSONError {
        JSONError(message: message, offset: offset ?? i)
    }

    func describeByte(at k: Int) -> String {
        guard k < count else { return "end of input" }
        let c = p[k]
        if c >= 0x21 && c < 0x7F { return "'\(Character(Unicode.Scalar(c)))'" }
        return "byte 0x" + String(c, radix: 16, uppercase: false)
    }

    mutating func skipWhitespace() {
        while i < count {
            switch p[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    mutating func parseValue() throws(JSONError) -> JSON {
        guard i < count else { throw fail("unexpected end of input, expected a value") }
        switch p[i] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("expected a value, found \(describeByte(at: i))")
        }
    }

    mutating func expectLiteral(_ word: StaticString) throws(JSONError) {
        let n = word.utf8CodeUnitCount
        var k = 0
        while k < n {
            guard i + k < count, p[i + k] == word.utf8Start[k] else {
                throw fail("invalid literal, expected '\(word)'")
            }
            k += 1
        }
        i += n
    }

    // MARK: Containers

    mutating func enterContainer() throws(JSONError) {
        depth += 1
        if depth > maxDepth { throw fail("nesting deeper than \(maxDepth) levels") }
    }

    mutating func parseArray() throws(JSONError) -> JSON {
        try enterContainer()
        defer { depth -= 1 }
        i += 1  // [
        skipWhitespace()
        if i < count && p[i] == UInt8(ascii: "]") {
            i += 1
            return .array([])
        }
        let base = elementStack.count
        while true {
            let element = try parseValue()
            elementStack.append(element)
            skipWhitespace()
            guard i < count else { throw fail("unterminated array, expected ',' or ']'") }
            if p[i] == UInt8(ascii: ",") {
                i += 1
                skipWhitespace()
            } else if p[i] == UInt8(ascii: "]") {
                i += 1
                break
            } else {
                throw fail("expected ',' or ']' in array, found \(describeByte(at: i))")
            }
        }
        let elements = Array(elementStack[base...])
        elementStack.removeSubrange(base...)
        return .array(elements)
    }

    mutating func parseObject() throws(JSONError) -> JSON {
        try enterContainer()
        defer { depth -= 1 }
        i += 1  // {
        skipWhitespace()
        if i < count && p[i] == UInt8(ascii: "}") {
            i += 1
            return .object([:])
        }
        let base = memberStack.count
        while true {
            guard i < count, p[i] == UInt8(ascii: "\"") else {
                throw fail("expected a string key in object, found \(describeByte(at: i))")
            }
            let keyOffset = i
            let key = try parseString()
            skipWhitespace()
            guard i < count, p[i] == UInt8(ascii: ":") else {
                throw fail("expected ':' after object key, found \(describeByte(at: i))")
            }
            i += 1
            skipWhitespace()
            let value = try parseValue()
            memberStack.append((key, value))
            keyOffsets.append(keyOffset)
            skipWhitespace()
            guard i < count else { throw fail("unterminated object, expected ',' or '}'") }
            if p[i] == UInt8(ascii: ",") {
                i += 1
                skipWhitespace()
            } else if p[i] == UInt8(ascii: "}") {
                i += 1
                break
            } else {
                throw fail("expected ',' or '}' in object, found \(describeByte(at: i))")
            }
        }
        var members = [String: JSON](minimumCapacity: memberStack.count - base)
        // Popping moves each member out of the stack, which is cheaper than copying the
        // slice and removing it; the document order of keys matters only for the error.
        while memberStack.count > base {
            let member = memberStack.removeLast()
            if members.updateValue(member.value, forKey: member.key) != nil {
                throw duplicateKeyError(keyOffsets: keyOffsets[base...])
            }
        }
        keyOffsets.removeSubrange(base...)
        return .object(members)
    }

    /// The error for the first key, in document order, that repeats an earlier key of the
    /// same object, found by decoding the keys again from their offsets.
    mutating func duplicateKeyError(keyOffsets: ArraySlice<Int>) -> JSONError {
        var seen = Set<String>()
        for offset in keyOffsets {
            i = offset
            guard let key = try? parseString() else { break }
            if !seen.insert(key).inserted {
                return fail("duplicate key \(quotedForMessage(key))", at: offset)
            }
        }
        return fail("duplicate key", at: keyOffsets.first ?? i)
    }

    /// The key as a JSON string, shortened so a hostile key cannot bloat the message.
    func quotedForMessage(_ key: String) -> String {
        var out: [UInt8] = []
        let limit = 64
        if key.count > limit {
            JSON.appendEscapedString(String(key.prefix(limit)), to: &out)
            JSON.appendASCII("...", to: &out)
        } else {
            JSON.appendEscapedString(key, to: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Strings

    /// Parses the string whose opening quote is at `i`. Strings without escapes are decoded
    /// from the input slice in one step; others go through `parseEscapedString`.
    mutating func parseString() throws(JSONError) -> String {
        let start = i + 1
        var k = start
        while true {
            // Skip eight plain ASCII bytes at a time.
            while k + 8 <= count {
                let word = UnsafeRawPointer(p + k).loadUnaligned(as: UInt64.self)
                if word & 0x8080_8080_8080_8080 != 0 || JSON.wordHasQuoteBackslashOrControl(word) { break }
                k += 8
            }
            guard k < count else { break }
            let c = p[k]
            if c == UInt8(ascii: "\"") {
                i = k + 1
                return String(decoding: UnsafeBufferPointer(start: p + start, count: k - start), as: UTF8.self)
            }
            if c == UInt8(ascii: "\\") {
                return try parseEscapedString(start: start, firstEscape: k)
            }
            if c < 0x20 {
                throw fail("raw control character 0x\(String(c, radix: 16)) in string; it must be escaped", at: k)
            }
            k = c < 0x80 ? k + 1 : try validateUTF8Sequence(at: k)
        }
        throw fail("unterminated string", at: start - 1)
    }

    mutating func parseEscapedString(start: Int, firstEscape: Int) throws(JSONError) -> String {
        unescaped.removeAll(keepingCapacity: true)
        unescaped.append(contentsOf: UnsafeBufferPointer(start: p + start, count: firstEscape - start))
        var k = firstEscape
        while k < count {
            let c = p[k]
            if c == UInt8(ascii: "\"") {
                i = k + 1
                return String(decoding: unescaped, as: UTF8.self)
            }
            if c == UInt8(ascii: "\\") {
                k = try decodeEscape(at: k)
            } else if c < 0x20 {
                throw fail("raw control character 0x\(String(c, radix: 16)) in string; it must be escaped", at: k)
            } else if c < 0x80 {
                unescaped.append(c)
                k += 1
            } else {
                let next = try validateUTF8Sequence(at: k)
                unescaped.append(contentsOf: UnsafeBufferPointer(start: p + k, count: next - k))
                k = next
            }
        }
        throw fail("unterminated string", at: start - 1)
    }

    /// Decodes the escape whose backslash is at `k` into `unescaped`; returns the offset after it.
    mutating func decodeEscape(at k: Int) throws(JSONError) -> Int {
        guard k + 1 < count else { throw fail("unterminated string", at: k) }
        let simple: UInt8
        switch p[k + 1] {
        case UInt8(ascii: "\""): simple = UInt8(ascii: "\"")
        case UInt8(ascii: "\\"): simple = UInt8(ascii: "\\")
        case UInt8(ascii: "/"): simple = UInt8(ascii: "/")
        case UInt8(ascii: "b"): simple = 0x08
        case UInt8(ascii: "f"): simple = 0x0C
        case UInt8(ascii: "n"): simple = 0x0A
        case UInt8(ascii: "r"): simple = 0x0D
        case UInt8(ascii: "t"): simple = 0x09
        case UInt8(ascii: "u"):
            let unit = try hex4(at: k + 2)
            switch unit {
            case 0xD800...0xDBFF:
                guard k + 7 < count, p[k + 6] == UInt8(ascii: "\\"), p[k + 7] == UInt8(ascii: "u") else {
                    throw fail("high surrogate \\u\(String(unit, radix: 16)) not followed by a low surrogate escape", at: k)
                }
                let low = try hex4(at: k + 8)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw fail("high surrogate \\u\(String(unit, radix: 16)) not followed by a low surrogate escape", at: k)
                }
                let scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                appendUTF8(scalar)
                return k + 12
            case 0xDC00...0xDFFF:
                throw fail("low surrogate \\u\(String(unit, radix: 16)) without a preceding high surrogate", at: k)
            default:
                appendUTF8(unit)
                return k + 6
            }
        default:
            throw fail("invalid escape: backslash followed by \(describeByte(at: k + 1))", at: k)
        }
        unescaped.append(simple)
        return k + 2
    }

    func hex4(at k: Int) throws(JSONError) -> UInt32 {
        guard k + 4 <= count else { throw fail("truncated \\u escape", at: k - 2) }
        var v: UInt32 = 0
        for n in k..<(k + 4) {
            let c = p[n]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: throw fail("invalid hex digit in \\u escape: \(describeByte(at: n))", at: n)
            }
            v = v << 4 | UInt32(digit)
        }
        return v
    }

    mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            unescaped.append(UInt8(scalar))
        case 0x80..<0x800:
            unescaped.append(0xC0 | UInt8(scalar >> 6))
            unescaped.append(0x80 | UInt8(scalar & 0x3F))
        case 0x800..<0x10000:
            unescaped.append(0xE0 | UInt8(scalar >> 12))
            unescaped.append(0x80 | UInt8((scalar >> 6) & 0x3F))
            unescaped.append(0x80 | UInt8(scalar & 0x3F))
        default:
            unescaped.append(0xF0 | UInt8(scalar >> 18))
            unescaped.append(0x80 | UInt8((scalar >> 12) & 0x3F))
            unescaped.append(0x80 | UInt8((scalar >> 6) & 0x3F))
            unescaped.append(0x80 | UInt8(scalar & 0x3F))
        }
    }

    /// Checks the multi-byte UTF-8 sequence starting at `k` (lead byte >= 0x80) against
    /// Unicode's well-formed table: no overlong forms, no surrogates, nothing past U+10FFFF.
    /// Returns the offset after the sequence.
    func validateUTF8Sequence(at k: Int) throws(JSONError) -> Int {
        let lead = p[k]
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondRange = 0x80...0x9F
        case 0xF0: length = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondRange = 0x80...0x8F
        default: throw fail("invalid UTF-8 lead byte 0x\(String(lead, radix: 16))", at: k)
        }
        guard k + length <= count else { throw fail("truncated UTF-8 sequence", at: k) }
        guard secondRange.contains(p[k + 1]) else { throw fail("invalid UTF-8 sequence", at: k) }
        var n = 2
        while n < length {
            guard p[k + n] & 0xC0 == 0x80 else { throw fail("invalid UTF-8 sequence", at: k) }
            n += 1
        }
        return k + length
    }

    // MARK: Numbers

    mutating func parseNumber() throws(JSONError) -> JSON {
        let start = i
        var k = i
        let negative = p[k] == UInt8(ascii: "-")
        if negative { k += 1 }
        let intStart = k
        guard k < count, isDigit(p[k]) else { throw fail("expected a digit after '-'", at: k) }
        if p[k] == UInt8(ascii: "0") {
            k += 1
            if k < count && isDigit(p[k]) { throw fail("number with a leading zero", at: start) }
        } else {
            while k < count && isDigit(p[k]) { k += 1 }
        }
        let intEnd = k
        var isInteger = true
        if k < count && p[k] == UInt8(ascii: ".") {
            isInteger = false
            k += 1
            guard k < count, isDigit(p[k]) else { throw fail("expected a digit after the decimal point", at: k) }
            while k < count && isDigit(p[k]) { k += 1 }
        }
        if k < count && (p[k] == UInt8(ascii: "e") || p[k] == UInt8(ascii: "E")) {
            isInteger = false
            k += 1
            if k < count && (p[k] == UInt8(ascii: "+") || p[k] == UInt8(ascii: "-")) { k += 1 }
            guard k < count, isDigit(p[k]) else { throw fail("expected a digit in the exponent", at: k) }
            while k < count && isDigit(p[k]) { k += 1 }
        }
        i = k
        if isInteger {
            // Accumulate the magnitude; Int64.min's magnitude is one more than Int64.max.
            let limit: UInt64 = negative ? UInt64(Int64.max) + 1 : UInt64(Int64.max)
            var magnitude: UInt64 = 0
            for n in intStart..<intEnd {
                let digit = UInt64(p[n] - UInt8(ascii: "0"))
                guard magnitude <= (limit - digit) / 10 else {
                    throw fail("integer out of range for a 64-bit signed integer", at: start)
                }
                magnitude = magnitude * 10 + digit
            }
            return .int(negative ? Int64(truncatingIfNeeded: 0 &- magnitude) : Int64(magnitude))
        }
        let text = String(decoding: UnsafeBufferPointer(start: p + start, count: k - start), as: UTF8.self)
        guard let d = Double(text), d.isFinite else {
            throw fail("number out of range for a 64-bit double", at: start)
        }
        return .double(d)
    }

    func isDigit(_ c: UInt8) -> Bool {
        c &- UInt8(ascii: "0") < 10
    }
}
