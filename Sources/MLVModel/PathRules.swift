/// What names a stored tree may contain, checked when adding and again at checkout.
///
/// A stored path is a `/`-joined list of names. A name must be valid UTF-8 and must not
/// be empty, `.` or `..`, or contain `/`, `\`, NUL or other control characters; it must
/// not be the store's own directory name in any disguise (`.mlv`, `.MLV`, `.mlv.`,
/// `.mlv `, or with zero-width characters). Two names in one directory must not
/// collide on a case-insensitive or normalising file system.
public enum PathRules {
    /// Characters that render as nothing and can make a name look like another.
    static let invisible: Set<Unicode.Scalar> = [
        "\u{200B}", "\u{200C}", "\u{200D}", "\u{200E}", "\u{200F}", "\u{2060}", "\u{FEFF}", "\u{00AD}",
    ]

    /// Why `name` cannot be stored, or nil when it is fine.
    public static func problem(withName name: String) -> String? {
        // Fast path: printable ASCII without '/', '\\' or a leading '.' is always fine.
        var plain = true
        var first = true
        for c in name.utf8 {
            if c < 0x20 || c >= 0x7F || c == UInt8(ascii: "/") || c == UInt8(ascii: "\\") || (first && c == UInt8(ascii: ".")) {
                plain = false
                break
            }
            first = false
        }
        if plain && !name.isEmpty { return nil }
        if name.isEmpty { return "empty name" }
        if name == "." || name == ".." { return "'\(name)' is not a file name" }
        for s in name.unicodeScalars {
            if s == "/" { return "contains '/'" }
            if s == "\\" { return "contains a backslash" }
            if s.value < 0x20 || s.value == 0x7F { return "contains a control character (U+\(hex4(s.value)))" }
            if s == "\u{FFFD}" { return "is not valid UTF-8" }
        }
        if looksLikeStore(name) { return "looks like mlv's own '.mlv' directory" }
        return nil
    }

    /// Why a `/`-separated relative path cannot be stored, or nil.
    public static func problem(withRelativePath path: String) -> String? {
        if path.hasPrefix("/") { return "is absolute" }
        for part in path.split(separator: "/", omittingEmptySubsequences: false) {
            if let p = problem(withName: String(part)) { return p }
        }
        return nil
    }

    /// True for `.mlv` in any case, with trailing dots or spaces, or invisible characters.
    public static func looksLikeStore(_ name: String) -> Bool {
        var scalars = name.unicodeScalars.filter { !invisible.contains($0) }
        while let last = scalars.last, last == "." || last == " " { scalars.removeLast() }
        return String(String.UnicodeScalarView(scalars)).lowercased() == ".mlv"
    }

    /// The key under which two names collide on a case-insensitive, normalising file
    /// system. Swift compares strings by canonical equivalence, so NFC and NFD forms of
    /// one name produce equal keys.
    public static func collisionKey(_ name: String) -> String {
        if !needsFolding(name) { return name }
        return String(String.UnicodeScalarView(name.unicodeScalars.filter { !invisible.contains($0) })).lowercased()
    }

    /// False when no other name can fold onto this one: printable ASCII with no
    /// uppercase letters (which only collides with itself).
    public static func needsFolding(_ name: String) -> Bool {
        name.utf8.contains { $0 >= 0x7F || (65...90).contains($0) }
    }

    /// The first name in one directory's `names` that collides with an earlier one on
    /// a case-insensitive, normalising file system, or nil. Names that are printable
    /// ASCII without uppercase letters cannot fold onto anything, so a directory of
    /// only such names needs no check.
    public static func firstCollision(_ names: [String]) -> String? {
        guard names.contains(where: needsFolding) else { return nil }
        var keys = Set<String>()
        for name in names where !keys.insert(collisionKey(name)).inserted {
            return name
        }
        return nil
    }

    private static func hex4(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }
}

/// Names of artifacts (datasets, models): lowercase letters, digits, `.`, `_`, `-`,
/// starting with a letter or digit, at most 100 characters.
public enum ArtifactName {
    /// Why `name` is not a valid artifact name, or nil.
    public static func problem(with name: String) -> String? {
        if name.isEmpty { return "a name cannot be empty" }
        if name.utf8.count > 100 { return "a name is at most 100 characters" }
        let bytes = Array(name.utf8)
        func ok(_ c: UInt8) -> Bool { (97...122).contains(c) || (48...57).contains(c) || c == 46 || c == 95 || c == 45 }
        guard bytes.allSatisfy(ok) else { return "use lowercase letters, digits, '.', '_' and '-'" }
        guard (97...122).contains(bytes[0]) || (48...57).contains(bytes[0]) else { return "start with a letter or digit" }
        if name.contains("..") { return "'..' is not allowed in a name" }
        return nil
    }
}
