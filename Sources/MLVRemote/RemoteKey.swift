/// The key rules every `Remote` enforces before it touches anything, so a key read from
/// a hostile remote or typed by a person can never name a file outside a directory
/// remote or an unexpected object in a bucket.
///
/// A key is one or more `/`-separated segments of printable ASCII (0x20 through 0x7E):
/// no empty segment (so no leading, trailing or doubled `/`), no `.` or `..` segment, no
/// segment starting with `.` (those names are reserved for an implementation's temp and
/// lock files), no `\`, and at most 1024 bytes (S3's limit).
public enum RemoteKey {
    /// Why `key` is not a valid key, or nil when it is.
    public static func problem(_ key: String) -> String? {
        problem(key, what: "a key")
    }

    private static func problem(_ key: String, what: String) -> String? {
        let bytes = Array(key.utf8)
        if bytes.isEmpty { return "\(what) is not empty" }
        if bytes.count > 1024 { return "\(what) is at most 1024 bytes" }
        for b in bytes {
            if b < 0x20 || b > 0x7E { return "\(what) is printable ASCII, no control characters" }
            if b == UInt8(ascii: "\\") { return "\(what) has no backslash" }
        }
        for segment in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if segment.isEmpty { return "\(what) has no empty segment (leading, trailing or doubled '/')" }
            if segment.first == UInt8(ascii: ".") { return "\(what) segment does not start with '.'" }
        }
        return nil
    }

    /// Why `prefix` cannot start a key, or nil when it can. The empty prefix lists everything.
    public static func prefixProblem(_ prefix: String) -> String? {
        if prefix.isEmpty { return nil }
        // A prefix is a key cut anywhere: check it as if completed with a harmless letter.
        return problem(prefix.hasSuffix("/") ? prefix + "x" : prefix, what: "a prefix")
    }

    /// Throws unless `key` is valid.
    /// - Throws: `RemoteError.failed` naming the key and the rule it breaks.
    public static func check(_ key: String, location: String) throws {
        if let why = problem(key) {
            throw RemoteError(.failed, location: location, key: printable(key), "invalid key: \(why)")
        }
    }

    /// Throws unless `prefix` can start a key.
    /// - Throws: `RemoteError.failed` naming the prefix and the rule it breaks.
    public static func checkPrefix(_ prefix: String, location: String) throws {
        if let why = prefixProblem(prefix) {
            throw RemoteError(.failed, location: location, key: printable(prefix), "invalid prefix: \(why)")
        }
    }

    /// `text` with control and non-ASCII bytes escaped, safe to put in a message.
    static func printable(_ text: String) -> String {
        var out = ""
        for b in text.utf8 {
            if b >= 0x20 && b < 0x7F { out.unicodeScalars.append(Unicode.Scalar(b)) }
            else { out += "\\x" + String(b, radix: 16, uppercase: false).leftPadded(to: 2) }
        }
        return out
    }

    /// Sorts by key bytes, the order S3 lists in.
    static func sortedByBytes(_ entries: [RemoteEntry]) -> [RemoteEntry] {
        entries.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// The argument rule of `Remote.getRange`.
enum RemoteRange {
    /// Throws unless `offset` and `length` are not negative.
    static func check(offset: Int64, length: Int, key: String, location: String) throws {
        if offset < 0 || length < 0 {
            throw RemoteError(.failed, location: location, key: key,
                              "invalid range: offset \(offset), length \(length) (neither may be negative)")
        }
    }
}
