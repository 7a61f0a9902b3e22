import MLVModel
import Testing

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

private func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

// MARK: - Canonical encoding

struct CanonicalCase: Sendable, CustomTestStringConvertible {
    var name: String
    var value: JSON
    var expected: String
    var testDescription: String { name }
}

@Suite("JSON canonical encoding")
struct JSONCanonicalEncodingTests {
    static let cases: [CanonicalCase] = [
        CanonicalCase(name: "null", value: .null, expected: "null"),
        CanonicalCase(name: "true", value: .bool(true), expected: "true"),
        CanonicalCase(name: "false", value: .bool(false), expected: "false"),
        CanonicalCase(name: "zero", value: .int(0), expected: "0"),
        CanonicalCase(name: "negative int", value: .int(-42), expected: "-42"),
        CanonicalCase(name: "Int64.max", value: .int(.max), expected: "9223372036854775807"),
        CanonicalCase(name: "Int64.min", value: .int(.min), expected: "-9223372036854775808"),
        CanonicalCase(name: "integral double keeps a fraction", value: .double(1), expected: "1.0"),
        CanonicalCase(name: "hundred", value: .double(100), expected: "100.0"),
        CanonicalCase(name: "zero double", value: .double(0), expected: "0.0"),
        CanonicalCase(name: "negative zero", value: .double(-0.0), expected: "0.0"),
        CanonicalCase(name: "shortest round trip", value: .double(0.1), expected: "0.1"),
        CanonicalCase(name: "negative fraction", value: .double(-2.5), expected: "-2.5"),
        CanonicalCase(name: "small exponent", value: .double(1e-5), expected: "1e-05"),
        CanonicalCase(name: "large exponent", value: .double(1e16), expected: "1e+16"),
        CanonicalCase(name: "2^53 without exponent", value: .double(9_007_199_254_740_992), expected: "9007199254740992.0"),
        CanonicalCase(name: "many digits", value: .double(123456.789), expected: "123456.789"),
        CanonicalCase(name: "smallest subnormal", value: .double(Double(bitPattern: 1)), expected: "5e-324"),
        CanonicalCase(name: "largest double", value: .double(.greatestFiniteMagnitude), expected: "1.7976931348623157e+308"),
        CanonicalCase(name: "NaN via number()", value: JSON.number(.nan), expected: "null"),
        CanonicalCase(name: "infinity via number()", value: JSON.number(-.infinity), expected: "null"),
        CanonicalCase(name: "finite via number()", value: JSON.number(0.5), expected: "0.5"),
        CanonicalCase(name: "non-finite double written directly", value: .double(.infinity), expected: "null"),
        CanonicalCase(name: "empty string", value: .string(""), expected: "\"\""),
        CanonicalCase(
            name: "escapes", value: .string("\"\\\u{08}\u{0C}\n\r\t\u{00}\u{01}\u{1B}\u{1F}"),
            expected: #""\"\\\b\f\n\r\t\u0000\u0001\u001b\u001f""#),
        CanonicalCase(
            name: "slash, DEL and non-ASCII raw", value: .string("a/b\u{7F}é日😀\u{FEFF}\u{2028}"),
            expected: "\"a/b\u{7F}é日😀\u{FEFF}\u{2028}\""),
        CanonicalCase(
            name: "combining mark kept as written", value: .string("e\u{301}"), expected: "\"e\u{301}\""),
        CanonicalCase(name: "empty array", value: .array([]), expected: "[]"),
        CanonicalCase(name: "empty object", value: .object([:]), expected: "{}"),
        CanonicalCase(name: "array order kept", value: [3, 1, 2], expected: "[3,1,2]"),
        CanonicalCase(
            name: "nesting and empty containers",
            value: ["d": ["e": ["f": nil]], "c": [[], [[:]]], "b": [:], "a": []],
            expected: #"{"a":[],"b":{},"c":[[],[{}]],"d":{"e":{"f":null}}}"#),
        CanonicalCase(
            // Byte order, not String's order (which would put "f" before "e\u{301}") and
            // not UTF-16 order (which would put 😀 before U+FF61).
            name: "keys sorted by UTF-8 bytes",
            value: [
                "😀": 13, "｡": 12, "日": 11, "ä": 10, "\u{7F}": 9, "z": 8, "f": 7, "e\u{301}": 6,
                "b": 5, "ab": 4, "a\u{0}": 3, "a": 2, "B": 1, "": 0,
            ],
            expected: #"{"":0,"B":1,"a":2,"a\u0000":3,"ab":4,"b":5,"#
                + "\"e\u{301}\":6,\"f\":7,\"z\":8,\"\u{7F}\":9,\"ä\":10,\"日\":11,\"｡\":12,\"😀\":13}"),
        CanonicalCase(
            name: "keys longer than eight bytes sharing a prefix",
            value: ["abcdefgh2": 2, "abcdefgh": 0, "abcdefgh1": 1, "abcdefgg": -1],
            expected: #"{"abcdefgg":-1,"abcdefgh":0,"abcdefgh1":1,"abcdefgh2":2}"#),
        CanonicalCase(
            name: "tree-like document",
            value: [
                "schema": "mlv.tree/1",
                "entries": [["size": 4096, "name": "dir/a b.bin", "mode": 420, "kind": "file"]],
            ],
            expected: #"{"entries":[{"kind":"file","mode":420,"name":"dir/a b.bin","size":4096}],"schema":"mlv.tree/1"}"#),
    ]

    @Test(arguments: cases)
    func canonicalBytes(_ c: CanonicalCase) {
        #expect(text(c.value.canonicalBytes()) == c.expected)
        #expect(c.value.canonicalBytes() == bytes(c.expected))
    }

    @Test func encodeCanonicalAppends() {
        var out = bytes("prefix:")
        JSON.object(["k": .array([.int(1)])]).encodeCanonical(into: &out)
        #expect(text(out) == #"prefix:{"k":[1]}"#)
    }

    @Test func everyControlCharacterIsEscaped() {
        let short: [UInt8: String] = [0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"]
        let hex = Array("0123456789abcdef")
        for c in UInt8(0)..<0x20 {
            let expected = short[c] ?? "\\u00\(hex[Int(c >> 4)])\(hex[Int(c & 0xF)])"
            let encoded = JSON.string(String(UnicodeScalar(c))).canonicalBytes()
            #expect(text(encoded) == "\"\(expected)\"", "control character \(c)")
        }
    }

    @Test(arguments: [0, 1, -1, 9, 10, -10, 4096, 1_000_000_007, Int64.max, Int64.min, Int64.min + 1])
    func appendInt(_ v: Int64) {
        var out = bytes("x")
        JSON.appendInt(v, to: &out)
        #expect(text(out) == "x" + String(v))
    }

    /// The escaper skips eight bytes at a time; put each kind of special byte at every
    /// position of strings around that width and compare with a byte-at-a-time reference.
    @Test func escapedStringMatchesReferenceAtEveryPosition() {
        let specials: [String] = ["\"", "\\", "\u{0}", "\n", "\u{1F}", " ", "\u{7F}", "é", "😀", "/"]
        for length in [0, 1, 7, 8, 9, 15, 16, 17, 24] {
            for position in 0...length {
                for special in specials {
                    var s = String(repeating: "a", count: position) + special
                    s += String(repeating: "b", count: length - position)
                    var out = bytes("=")
                    JSON.appendEscapedString(s, to: &out)
                    #expect(out == bytes("=") + referenceEscape(s), "\(length) \(position)")
                    #expect(JSON.string(s).canonicalBytes() == referenceEscape(s))
                }
            }
        }
    }

    @Test func literalsAndAccessors() throws {
        let value: JSON = ["a": [1, 2.5, "x", true, nil], "o": ["k": "v"]]
        #expect(
            value
                == .object([
                    "a": .array([.int(1), .double(2.5), .string("x"), .bool(true), .null]),
                    "o": .object(["k": .string("v")]),
                ]))
        let a = try #require(value["a"]?.array)
        #expect(a[0].int == 1)
        #expect(a[0].double == 1.0)
        #expect(a[1].double == 2.5)
        #expect(a[1].int == nil)
        #expect(a[2].string == "x")
        #expect(a[3].bool == true)
        #expect(a[4].isNull)
        #expect(a[4].string == nil)
        #expect(value["o"]?["k"]?.string == "v")
        #expect(value["missing"] == nil)
        #expect(value.object?.count == 2)
        #expect(JSON.string("s")["k"] == nil)
        #expect(JSON.int(1).array == nil)
        #expect(JSON.null.object == nil)
    }
}

/// A byte-at-a-time statement of the string rule, independent of the library's code.
private func referenceEscape(_ s: String) -> [UInt8] {
    var out: [UInt8] = [UInt8(ascii: "\"")]
    let hex = Array("0123456789abcdef".utf8)
    for c in s.utf8 {
        switch c {
        case UInt8(ascii: "\""): out += bytes("\\\"")
        case UInt8(ascii: "\\"): out += bytes("\\\\")
        case 0x08: out += bytes("\\b")
        case 0x09: out += bytes("\\t")
        case 0x0A: out += bytes("\\n")
        case 0x0C: out += bytes("\\f")
        case 0x0D: out += bytes("\\r")
        case 0..<0x20: out += bytes("\\u00") + [hex[Int(c >> 4)], hex[Int(c & 0xF)]]
        default: out.append(c)
        }
    }
    out.append(UInt8(ascii: "\""))
    return out
}

/// A plain statement of the canonical rules, to compare the library's output with.
private func referenceCanonical(_ value: JSON) -> [UInt8] {
    switch value {
    case .null: return bytes("null")
    case .bool(let b): return bytes(b ? "true" : "false")
    case .int(let i): return bytes(String(i))
    case .double(let d): return bytes(!d.isFinite ? "null" : d == 0 ? "0.0" : d.description)
    case .string(let s): return referenceEscape(s)
    case .array(let elements):
        return bytes("[") + elements.map(referenceCanonical).joined(separator: bytes(",")) + bytes("]")
    case .object(let members):
        let sorted = members.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
        let encoded = sorted.map { referenceEscape($0.key) + bytes(":") + referenceCanonical($0.value) }
        return bytes("{") + encoded.joined(separator: bytes(",")) + bytes("}")
    }
}

// MARK: - Parsing

struct ParseCase: Sendable, CustomTestStringConvertible {
    var input: [UInt8]
    var expected: JSON
    var testDescription: String { text(input) }
}

struct Rejection: Sendable, CustomTestStringConvertible {
    var name: String
    var input: [UInt8]
    var offset: Int
    var fragment: String
    var maxDepth = 64
    var testDescription: String { name }
}

@Suite("JSON parsing")
struct JSONParsingTests {
    static let accepted: [ParseCase] = [
        ParseCase(input: bytes("null"), expected: .null),
        ParseCase(input: bytes("true"), expected: true),
        ParseCase(input: bytes(" false "), expected: false),
        ParseCase(input: bytes("0"), expected: .int(0)),
        ParseCase(input: bytes("-0"), expected: .int(0)),
        ParseCase(input: bytes("4096"), expected: .int(4096)),
        ParseCase(input: bytes("4096.0"), expected: .double(4096)),
        ParseCase(input: bytes("9223372036854775807"), expected: .int(.max)),
        ParseCase(input: bytes("-9223372036854775808"), expected: .int(.min)),
        ParseCase(input: bytes("0.1"), expected: .double(0.1)),
        ParseCase(input: bytes("-2.5"), expected: .double(-2.5)),
        ParseCase(input: bytes("1E3"), expected: .double(1000)),
        ParseCase(input: bytes("1e+2"), expected: .double(100)),
        ParseCase(input: bytes("15e-1"), expected: .double(1.5)),
        ParseCase(input: bytes("1e-05"), expected: .double(1e-5)),
        ParseCase(input: bytes("5e-324"), expected: .double(Double(bitPattern: 1))),
        ParseCase(input: bytes("1e-400"), expected: .double(0)),
        ParseCase(input: bytes("1.7976931348623157e308"), expected: .double(.greatestFiniteMagnitude)),
        ParseCase(input: bytes(#""""#), expected: ""),
        ParseCase(input: bytes("\"日本 😀\""), expected: "日本 😀"),
        ParseCase(
            input: bytes(#""\"\\\/\b\f\n\r\t\u0000\u001F\u00e9\u00E9\ud83d\ude00\uFFFF""#),
            expected: .string("\"\\/\u{08}\u{0C}\n\r\t\u{00}\u{1F}éé😀\u{FFFF}")),
        ParseCase(input: bytes(#""abcdefghijklmnop\nqrstuvwxyz日本""#), expected: "abcdefghijklmnop\nqrstuvwxyz日本"),
        ParseCase(input: bytes("[]"), expected: []),
        ParseCase(input: bytes("{}"), expected: [:]),
        ParseCase(input: bytes(" \t\r\n[ 1 ,\n\t2 ] \r\n"), expected: [1, 2]),
        ParseCase(
            input: bytes(#"{ "b" : { } , "a" : [ null , "x" ] }"#),
            expected: ["a": [nil, "x"], "b": [:]]),
        ParseCase(input: bytes(#"{"a":1,"A":2,"é":3,"e\u0301x":4}"#), expected: ["a": 1, "A": 2, "é": 3, "e\u{301}x": 4]),
    ]

    @Test(arguments: accepted)
    func parses(_ c: ParseCase) throws {
        #expect(try JSON.parse(c.input) == c.expected)
    }

    @Test func negativeZeroDoubleKeepsItsSignUntilEncoded() throws {
        let value = try JSON.parse(bytes("-0.0"))
        let d = try #require(value.double)
        #expect(d == 0 && d.sign == .minus)
        #expect(text(value.canonicalBytes()) == "0.0")
    }

    @Test func parsesFromRawBuffer() throws {
        let input = bytes(#"{"k":[1,2]}"#)
        let value = try input.withUnsafeBytes { buffer in try JSON.parse(buffer) }
        #expect(value == ["k": [1, 2]])
    }

    @Test(arguments: [
        (#"{ "b" : 1.50, "a" : [ 1e2 , "\u0041\/\u00e9" , -0 ] }"#, #"{"a":[100.0,"A/é",0],"b":1.5}"#),
        (" [ \"\\u001F\", \"\\u007f\" ] ", #"["\u001f","# + "\"\u{7F}\"]"),
        (#"{"z":{"y":{"x":[{}]}},"a":0.10}"#, #"{"a":0.1,"z":{"y":{"x":[{}]}}}"#),
    ])
    func parseThenCanonicalize(_ input: String, _ canonical: String) throws {
        #expect(text(try JSON.parse(bytes(input)).canonicalBytes()) == canonical)
    }

    @Test(arguments: [
        #"{"entries":[{"id":"00ff","kind":"file","mode":420,"name":"dir/file000123.bin","size":4096}],"schema":"mlv.tree/1"}"#,
        #"{"":[],"a":{"b":[true,false,null,-1,2.5e-07,"\\\"\n"]},"é":"日"}"#,
        "[\"\u{7F}\\u0000\"]",
        #"[1e+16,1.0,0.0,-9223372036854775808]"#,
    ])
    func canonicalInputIsReproducedByteForByte(_ canonical: String) throws {
        #expect(try JSON.parse(bytes(canonical)).canonicalBytes() == bytes(canonical))
    }

    static let rejections: [Rejection] = [
        // Empty and trailing input.
        Rejection(name: "empty input", input: [], offset: 0, fragment: "empty input"),
        Rejection(name: "only whitespace", input: bytes(" \n\t"), offset: 3, fragment: "empty input"),
        Rejection(name: "trailing word", input: bytes("{} x"), offset: 3, fragment: "trailing data"),
        Rejection(name: "two values", input: bytes("1 2"), offset: 2, fragment: "trailing data"),
        Rejection(name: "extra bracket", input: bytes("[1]]"), offset: 3, fragment: "trailing data"),
        Rejection(name: "trailing NUL", input: bytes("{}") + [0], offset: 2, fragment: "byte 0x0"),
        // Duplicate keys.
        Rejection(name: "duplicate key", input: bytes(#"{"a":1,"a":2}"#), offset: 7, fragment: #"duplicate key "a""#),
        Rejection(
            name: "nested duplicate key", input: bytes(#"{"x":{"k":1,"j":2,"k":3}}"#), offset: 18,
            fragment: #"duplicate key "k""#),
        Rejection(
            name: "first repeated key in document order", input: bytes(#"{"a":1,"b":2,"a":3,"b":4}"#), offset: 13,
            fragment: #"duplicate key "a""#),
        Rejection(
            name: "duplicate key spelled with an escape", input: bytes(#"{"ab":1,"a\u0062":2}"#), offset: 8,
            fragment: #"duplicate key "ab""#),
        Rejection(
            name: "canonically equivalent keys", input: bytes("{\"é\":1,\"e\u{301}\":2}"), offset: 8,
            fragment: "duplicate key \"e\u{301}\""),
        // Invalid UTF-8.
        Rejection(name: "0xFF in string", input: bytes("\"a") + [0xFF] + bytes("b\""), offset: 2, fragment: "invalid UTF-8"),
        Rejection(name: "overlong slash", input: bytes("\"") + [0xC0, 0xAF] + bytes("\""), offset: 1, fragment: "invalid UTF-8"),
        Rejection(name: "overlong three bytes", input: bytes("\"") + [0xE0, 0x80, 0xAF] + bytes("\""), offset: 1, fragment: "invalid UTF-8"),
        Rejection(name: "encoded surrogate", input: bytes("\"") + [0xED, 0xA0, 0x80] + bytes("\""), offset: 1, fragment: "invalid UTF-8"),
        Rejection(name: "beyond U+10FFFF", input: bytes("\"") + [0xF4, 0x90, 0x80, 0x80] + bytes("\""), offset: 1, fragment: "invalid UTF-8"),
        Rejection(name: "lone continuation byte", input: bytes("\"") + [0x80] + bytes("\""), offset: 1, fragment: "invalid UTF-8"),
        Rejection(name: "sequence cut by quote", input: bytes("\"") + [0xE6, 0x97] + bytes("\""), offset: 1, fragment: "invalid UTF-8"),
        Rejection(name: "sequence cut by end", input: bytes("\"") + [0xE6, 0x97], offset: 1, fragment: "truncated UTF-8"),
        Rejection(name: "invalid UTF-8 after an escape", input: bytes(#""\n"#) + [0xFE] + bytes("\""), offset: 3, fragment: "invalid UTF-8"),
        Rejection(name: "invalid UTF-8 in key", input: bytes("{\"") + [0xFF] + bytes("\":1}"), offset: 2, fragment: "invalid UTF-8"),
        Rejection(name: "invalid UTF-8 after eight ASCII bytes", input: bytes("\"abcdefghij") + [0xC3, 0x28] + bytes("\""), offset: 11, fragment: "invalid UTF-8"),
        Rejection(name: "non-ASCII outside strings", input: bytes("[1,é]"), offset: 3, fragment: "byte 0xc3"),
        Rejection(name: "byte-order mark", input: [0xEF, 0xBB, 0xBF] + bytes("{}"), offset: 0, fragment: "byte 0xef"),
        // Surrogate escapes.
        Rejection(name: "lone high surrogate", input: bytes(#""\ud83d""#), offset: 1, fragment: "high surrogate"),
        Rejection(name: "lone low surrogate", input: bytes(#""ab\ude00""#), offset: 3, fragment: "low surrogate"),
        Rejection(name: "surrogates in the wrong order", input: bytes(#""\ude00\ud83d""#), offset: 1, fragment: "low surrogate"),
        Rejection(name: "high surrogate then non-surrogate", input: bytes(#""\ud83d\u0041""#), offset: 1, fragment: "high surrogate"),
        Rejection(name: "high surrogate then text", input: bytes(#""\ud83dxxxxxx""#), offset: 1, fragment: "high surrogate"),
        Rejection(name: "two high surrogates", input: bytes(#""\ud83d\ud83d""#), offset: 1, fragment: "high surrogate"),
        // Raw control characters and bad escapes.
        Rejection(name: "raw tab", input: bytes("\"a\tb\""), offset: 2, fragment: "raw control character"),
        Rejection(name: "raw NUL", input: bytes("\"") + [0x00] + bytes("\""), offset: 1, fragment: "raw control character"),
        Rejection(name: "raw 0x1F", input: bytes("\"") + [0x1F] + bytes("\""), offset: 1, fragment: "raw control character"),
        Rejection(name: "raw newline after escape", input: bytes("\"\\n\n\""), offset: 3, fragment: "raw control character"),
        Rejection(name: "raw newline after eight bytes", input: bytes("\"abcdefghijk\n\""), offset: 12, fragment: "raw control character"),
        Rejection(name: "unknown escape", input: bytes(#""\x""#), offset: 1, fragment: "invalid escape"),
        Rejection(name: "single-quote escape", input: bytes(#""\'""#), offset: 1, fragment: "invalid escape"),
        Rejection(name: "capital U escape", input: bytes(#""\U0041""#), offset: 1, fragment: "invalid escape"),
        Rejection(name: "short \\u escape", input: bytes(#""\u12""#), offset: 1, fragment: "truncated \\u escape"),
        Rejection(name: "non-hex in \\u escape", input: bytes(#""\u12G4""#), offset: 5, fragment: "invalid hex digit"),
        Rejection(name: "backslash at end", input: bytes(#""\"#), offset: 1, fragment: "unterminated string"),
        Rejection(name: "unterminated string", input: bytes(#""abc"#), offset: 0, fragment: "unterminated string"),
        Rejection(name: "unterminated string after escape", input: bytes(#"["a\nb"#), offset: 1, fragment: "unterminated string"),
        // Numbers.
        Rejection(name: "leading zero", input: bytes("01"), offset: 0, fragment: "leading zero"),
        Rejection(name: "negative leading zero", input: bytes("-01"), offset: 0, fragment: "leading zero"),
        Rejection(name: "double zero", input: bytes("00"), offset: 0, fragment: "leading zero"),
        Rejection(name: "leading zero in array", input: bytes("[012]"), offset: 1, fragment: "leading zero"),
        Rejection(name: "leading zero with fraction", input: bytes("00.5"), offset: 0, fragment: "leading zero"),
        Rejection(name: "plus sign", input: bytes("+1"), offset: 0, fragment: "found '+'"),
        Rejection(name: "bare fraction", input: bytes(".5"), offset: 0, fragment: "found '.'"),
        Rejection(name: "bare decimal point", input: bytes("5."), offset: 2, fragment: "decimal point"),
        Rejection(name: "point before exponent", input: bytes("5.e3"), offset: 2, fragment: "decimal point"),
        Rejection(name: "empty exponent", input: bytes("1e"), offset: 2, fragment: "exponent"),
        Rejection(name: "signed empty exponent", input: bytes("[1e+]"), offset: 4, fragment: "exponent"),
        Rejection(name: "lone minus", input: bytes("-"), offset: 1, fragment: "digit after '-'"),
        Rejection(name: "minus fraction", input: bytes("-.5"), offset: 1, fragment: "digit after '-'"),
        Rejection(name: "NaN", input: bytes("NaN"), offset: 0, fragment: "found 'N'"),
        Rejection(name: "lowercase nan", input: bytes("[nan]"), offset: 1, fragment: "invalid literal"),
        Rejection(name: "Infinity", input: bytes("Infinity"), offset: 0, fragment: "found 'I'"),
        Rejection(name: "negative Infinity", input: bytes("-Infinity"), offset: 1, fragment: "digit after '-'"),
        Rejection(name: "hex number", input: bytes("0x10"), offset: 1, fragment: "trailing data"),
        Rejection(name: "Int64.max + 1", input: bytes("9223372036854775808"), offset: 0, fragment: "integer out of range"),
        Rejection(name: "Int64.min - 1", input: bytes("-9223372036854775809"), offset: 0, fragment: "integer out of range"),
        Rejection(name: "twenty digits", input: bytes("[1,99999999999999999999]"), offset: 3, fragment: "integer out of range"),
        Rejection(name: "double overflow", input: bytes("1e309"), offset: 0, fragment: "out of range"),
        Rejection(name: "negative double overflow", input: bytes("-1e400"), offset: 0, fragment: "out of range"),
        Rejection(name: "just above the largest double", input: bytes("1.8e308"), offset: 0, fragment: "out of range"),
        Rejection(name: "huge exponent", input: bytes("[0.5e99999]"), offset: 1, fragment: "out of range"),
        // Nesting.
        Rejection(
            name: "65 levels with the default limit", input: Array(repeating: UInt8(ascii: "["), count: 65)
                + Array(repeating: UInt8(ascii: "]"), count: 65), offset: 64, fragment: "nesting deeper than 64"),
        Rejection(
            name: "a million open brackets", input: Array(repeating: UInt8(ascii: "["), count: 1_000_000), offset: 64,
            fragment: "nesting deeper than 64"),
        Rejection(name: "arrays past maxDepth 2", input: bytes("[[[1]]]"), offset: 2, fragment: "deeper than 2", maxDepth: 2),
        Rejection(name: "objects past maxDepth 2", input: bytes(#"{"a":{"b":{}}}"#), offset: 10, fragment: "deeper than 2", maxDepth: 2),
        Rejection(name: "any container at maxDepth 0", input: bytes("[]"), offset: 0, fragment: "deeper than 0", maxDepth: 0),
        // Structure.
        Rejection(name: "trailing comma in array", input: bytes("[1,]"), offset: 3, fragment: "found ']'"),
        Rejection(name: "trailing comma in object", input: bytes(#"{"a":1,}"#), offset: 7, fragment: "expected a string key"),
        Rejection(name: "unquoted key", input: bytes("{a:1}"), offset: 1, fragment: "expected a string key"),
        Rejection(name: "number as key", input: bytes("{1:1}"), offset: 1, fragment: "expected a string key"),
        Rejection(name: "missing colon", input: bytes(#"{"a" 1}"#), offset: 5, fragment: "expected ':'"),
        Rejection(name: "missing comma in array", input: bytes("[1 2]"), offset: 3, fragment: "expected ',' or ']'"),
        Rejection(name: "missing comma in object", input: bytes(#"{"a":1 "b":2}"#), offset: 7, fragment: "expected ',' or '}'"),
        Rejection(name: "unclosed array", input: bytes("[1"), offset: 2, fragment: "unterminated array"),
        Rejection(name: "unclosed empty array", input: bytes("["), offset: 1, fragment: "end of input"),
        Rejection(name: "unclosed object", input: bytes("{"), offset: 1, fragment: "end of input"),
        Rejection(name: "missing value", input: bytes(#"{"a":"#), offset: 5, fragment: "end of input"),
        Rejection(name: "truncated literal", input: bytes("tru"), offset: 0, fragment: "invalid literal"),
        Rejection(name: "misspelled literal", input: bytes("nul1"), offset: 0, fragment: "invalid literal"),
        Rejection(name: "capitalized literal", input: bytes("True"), offset: 0, fragment: "found 'T'"),
        Rejection(name: "literal followed by letters", input: bytes("truex"), offset: 4, fragment: "trailing data"),
        Rejection(name: "single quotes", input: bytes("'a'"), offset: 0, fragment: "found '''"),
        Rejection(name: "vertical tab is not whitespace", input: bytes("\u{0B}1"), offset: 0, fragment: "byte 0xb"),
        Rejection(name: "form feed is not whitespace", input: bytes("[1,\u{0C}2]"), offset: 3, fragment: "byte 0xc"),
        Rejection(name: "no-break space is not whitespace", input: bytes("\u{A0}1"), offset: 0, fragment: "byte 0xc2"),
        Rejection(name: "comment", input: bytes("[1 // one\n]"), offset: 3, fragment: "expected ',' or ']'"),
    ]

    @Test(arguments: rejections)
    func rejects(_ r: Rejection) {
        let error = #expect(throws: JSONError.self) {
            try JSON.parse(r.input, maxDepth: r.maxDepth)
        }
        #expect(error?.offset == r.offset)
        #expect(error?.message.contains(r.fragment) == true, "message: \(error?.message ?? "none")")
        #expect(error?.description.contains("byte offset \(r.offset)") == true)
    }

    @Test func errorDescriptionNamesOffsetAndProblem() {
        let error = JSONError(message: #"duplicate key "a""#, offset: 7)
        #expect(error.description == #"invalid JSON at byte offset 7: duplicate key "a""#)
        #expect(throws: error) { try JSON.parse(bytes(#"{"a":1,"a":2}"#)) }
    }

    @Test func duplicateKeyMessageEscapesAndShortensHostileKeys() {
        let longKey = String(repeating: "k", count: 10_000)
        let longError = #expect(throws: JSONError.self) {
            try JSON.parse(bytes("{\"\(longKey)\":1,\"\(longKey)\":2}"))
        }
        #expect(longError?.offset == 10_006)
        #expect((longError?.message.utf8.count ?? .max) < 100)

        let controlError = #expect(throws: JSONError.self) {
            try JSON.parse(bytes(#"{"a\nb":1,"a\nb":2}"#))
        }
        #expect(controlError?.message == #"duplicate key "a\nb""#)
    }

    @Test func nestingUpToTheLimitIsAccepted() throws {
        let depth = 64
        let input = Array(repeating: UInt8(ascii: "["), count: depth) + Array(repeating: UInt8(ascii: "]"), count: depth)
        var value = try JSON.parse(input)
        for _ in 1..<depth { value = try #require(value.array?.first) }
        #expect(value == [])
        #expect(try JSON.parse(bytes("[[1]]"), maxDepth: 2) == [[1]])
        #expect(try JSON.parse(bytes("1"), maxDepth: 0) == 1)
    }
}

// MARK: - Round trips over generated values

/// SplitMix64: a fixed, seedable generator so every run checks the same values.
private struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}

private let scalarAlphabet: [Unicode.Scalar] = [
    "a", "b", "z", "A", "0", " ", "/", "\"", "\\", "\u{0}", "\u{8}", "\t", "\n", "\u{C}", "\r", "\u{1B}",
    "\u{1F}", "\u{7F}", "\u{80}", "é", "\u{301}", "ß", "日", "\u{2028}", "\u{D7FF}", "\u{E000}", "\u{FEFF}",
    "｡", "\u{FFFF}", "😀", "\u{10FFFF}",
]

private func generateString(_ rng: inout SplitMix64, maxLength: Int) -> String {
    var s = String.UnicodeScalarView()
    let length = rng.below(maxLength + 1)
    for _ in 0..<length {
        // Mostly ASCII letters so the eight-byte fast paths run, with specials mixed in.
        if rng.below(3) == 0 {
            s.append(scalarAlphabet[rng.below(scalarAlphabet.count)])
        } else {
            s.append(Unicode.Scalar(UInt8(ascii: "a") + UInt8(rng.below(26))))
        }
    }
    return String(s)
}

private func generateDouble(_ rng: inout SplitMix64) -> Double {
    switch rng.below(4) {
    case 0:
        let d = Double(bitPattern: rng.next())
        return d.isFinite ? d : 1.5
    case 1:
        return Double(rng.below(2001) - 1000) / 8
    case 2:
        return Double(Int64(bitPattern: rng.next()) >> rng.below(64))
    default:
        let specials: [Double] = [
            0, -0.0, 0.1, 1e-5, 1e16, 1e22, Double(bitPattern: 1), .greatestFiniteMagnitude,
            -.leastNormalMagnitude, 9_007_199_254_740_994, 123456.789,
        ]
        return specials[rng.below(specials.count)]
    }
}

private func generateValue(_ rng: inout SplitMix64, depth: Int) -> JSON {
    switch rng.below(depth >= 3 ? 5 : 7) {
    case 0: return .null
    case 1: return .bool(rng.below(2) == 0)
    case 2:
        switch rng.below(3) {
        case 0: return .int(Int64(bitPattern: rng.next()))
        case 1: return .int(Int64(rng.below(2001) - 1000))
        default: return .int([Int64.min, .max, 0, -1][rng.below(4)])
        }
    case 3: return .double(generateDouble(&rng))
    case 4: return .string(generateString(&rng, maxLength: rng.below(4) == 0 ? 40 : 10))
    case 5:
        return .array((0..<rng.below(6)).map { _ in generateValue(&rng, depth: depth + 1) })
    default:
        var members: [String: JSON] = [:]
        for _ in 0..<rng.below(7) {
            members[generateString(&rng, maxLength: 12)] = generateValue(&rng, depth: depth + 1)
        }
        return .object(members)
    }
}

@Suite("JSON round trips")
struct JSONRoundTripTests {
    @Test(arguments: 0..<200 as Range<UInt64>)
    func generatedValuesRoundTrip(seed: UInt64) throws {
        var rng = SplitMix64(state: seed)
        // A few values side by side so every seed exercises containers, at up to five levels.
        let value = JSON.array((0...rng.below(6)).map { _ in generateValue(&rng, depth: 0) })
        let canonical = value.canonicalBytes()
        #expect(canonical == referenceCanonical(value))
        let parsed = try JSON.parse(canonical)
        #expect(parsed == value)
        #expect(parsed.canonicalBytes() == canonical)
        #expect(try JSON.parse(bytes(value.prettyString())) == value)
        #expect(try JSON.parse(bytes(value.prettyString(indent: 0))) == value)
    }

    @Test func prettyOutput() throws {
        let value: JSON = ["b": [1, [], ["x": nil, "w": "\n"]], "a": "s", "c": [:]]
        let expected = """
            {
              "a": "s",
              "b": [
                1,
                [],
                {
                  "w": "\\n",
                  "x": null
                }
              ],
              "c": {}
            }
            """
        #expect(value.prettyString() == expected)
        #expect(try JSON.parse(bytes(expected)) == value)
        #expect(value.prettyString(indent: 4).contains("\n        1,\n"))
        #expect(JSON.int(3).prettyString() == "3")
        #expect(JSON.array([]).prettyString() == "[]")
    }
}
