/// A JSON value, with the canonical encoding that identifies manifests, trees and events.
///
/// Manifests, trees and events are stored as canonical JSON and their id is the SHA-256
/// of exactly those bytes, so the rules below are part of the on-disk format: changing
/// any of them changes ids and needs a format version bump in `docs/design.md`.
///
/// Canonical encoding (`canonicalBytes()`, `encodeCanonical(into:)`):
///
/// - UTF-8 output, no byte-order mark, no whitespace anywhere outside strings.
/// - Objects: members sorted by the UTF-8 bytes of their keys, compared byte-wise
///   lexicographically (a proper prefix sorts first). This is code-point order, not
///   UTF-16 order and not Unicode-normalized order. Written as `{"k":v,"k2":v2}`.
/// - Arrays: `[v1,v2]` in their given order.
/// - Strings: the string's own UTF-8 bytes between `"` quotes, unnormalized. Only `"`
///   (as `\"`), `\` (as `\\`) and U+0000...U+001F are escaped; those control characters
///   use `\b \t \n \f \r` where JSON has a short form and `\u00XX` with lowercase hex
///   otherwise (`\u0000`, `\u001f`). Everything else, including `/`, U+007F and all
///   non-ASCII, is written raw.
/// - `.int`: plain decimal, `-` for negatives, no `+`, no leading zeros.
/// - `.double`: Swift's shortest round-trip `Double.description`, which always
///   carries a fraction or an exponent so it never reads back as an integer: `1.0`,
///   `0.1`, `-2.5`, `1e-05`, `1e+16`, `5e-324`, `1.7976931348623157e+308`. Negative
///   zero is written `0.0`. NaN and infinities have no JSON form and are written `null`;
///   build numbers that may be non-finite with `JSON.number(_:)`, which makes that
///   mapping explicit in the value instead of at encoding time.
/// - `true`, `false`, `null`.
///
/// Parsing (`JSON.parse`) is strict because it reads objects that a hostile writer may
/// have put on a shared remote. It accepts RFC 8259 JSON with whitespace (space, tab,
/// LF, CR) between tokens, so pretty-printed text parses, and it rejects: empty input,
/// trailing non-whitespace, invalid UTF-8 anywhere, raw control characters in strings,
/// unknown escapes, unpaired or mis-ordered UTF-16 surrogate escapes, duplicate object
/// keys, numbers with leading zeros, a `+` sign, a bare `.5` or `5.`, `NaN`/`Infinity`,
/// integers (no fraction or exponent) outside `Int64`, numbers that overflow `Double`,
/// and nesting deeper than `maxDepth`. A number without fraction or exponent becomes
/// `.int`; any other number becomes `.double`.
///
/// Keys are Swift `String`s, and Swift compares strings by canonical equivalence: keys
/// that are byte-different but canonically equivalent (`"é"` as U+00E9 and as
/// `e` + U+0301) are the same dictionary key, so the parser rejects such an object as
/// having a duplicate key. String bytes are never normalized, so `parse` followed by
/// canonical encoding reproduces a canonical input byte for byte.
public enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    /// A number from a `Double`: `.double(d)` when finite, `.null` for NaN and infinities.
    public static func number(_ d: Double) -> JSON {
        d.isFinite ? .double(d) : .null
    }
}

// MARK: - Accessors

extension JSON {
    /// The member named `key` when this is an object that has it; nil otherwise.
    public subscript(key: String) -> JSON? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    /// The string when this is `.string`.
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The integer when this is `.int`; a `.double` is not converted.
    public var int: Int64? {
        if case .int(let i) = self { return i }
        return nil
    }

    /// The number when this is `.double` or `.int` (integers beyond 2^53 round).
    public var double: Double? {
        switch self {
        case .double(let d): return d
        case .int(let i): return Double(i)
        default: return nil
        }
    }

    /// The value when this is `.bool`.
    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements when this is `.array`.
    public var array: [JSON]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The members when this is `.object`.
    public var object: [String: JSON]? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// True for `.null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

// MARK: - Literals

extension JSON: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }

    /// Like Swift's own dictionary literals, a literal with a repeated key traps.
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(Dictionary(uniqueKeysWithValues: elements))
    }
}
