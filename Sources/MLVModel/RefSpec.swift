/// What a person types to name a version: `NAME@vN`, `NAME@ALIAS`, `NAME` (latest),
/// optionally `KIND:` in front (`dataset:mnist@v2`) and `#SPLIT` behind
/// (`mnist@v2#eval`); or a hex prefix (6 or more digits) of an object id.
public struct RefSpec: Sendable, Equatable, CustomStringConvertible {
    public enum Selector: Sendable, Equatable {
        case version(Int)
        case alias(String)
    }

    public var kind: String?
    public var name: String
    public var selector: Selector
    public var split: String?

    public init(kind: String? = nil, name: String, selector: Selector, split: String? = nil) {
        self.kind = kind; self.name = name; self.selector = selector; self.split = split
    }

    public static let kinds = ["dataset", "model", "run", "code"]

    /// Parses `[KIND:]NAME[@vN|@ALIAS][#SPLIT]`.
    /// - Throws: `ModelError` saying what is wrong with the text.
    public static func parse(_ text: String) throws -> RefSpec {
        var rest = Substring(text)
        var split: String?
        if let hash = rest.firstIndex(of: "#") {
            split = String(rest[rest.index(after: hash)...])
            rest = rest[..<hash]
            if split!.isEmpty { throw ModelError("'\(text)': empty split name after '#'") }
        }
        var kind: String?
        if let colon = rest.firstIndex(of: ":") {
            kind = String(rest[..<colon])
            rest = rest[rest.index(after: colon)...]
            guard kinds.contains(kind!) else {
                throw ModelError("'\(text)': unknown kind '\(kind!)' (use \(kinds.joined(separator: ", ")))")
            }
        }
        var selector = Selector.alias("latest")
        if let at = rest.firstIndex(of: "@") {
            let sel = rest[rest.index(after: at)...]
            rest = rest[..<at]
            if sel.isEmpty { throw ModelError("'\(text)': nothing after '@'") }
            if sel.first == "v", let n = Int(sel.dropFirst()), n > 0, String(n) == sel.dropFirst() {
                selector = .version(n)
            } else {
                if let p = ArtifactName.problem(with: String(sel)) { throw ModelError("'\(text)': bad alias '\(sel)': \(p)") }
                selector = .alias(String(sel))
            }
        }
        let name = String(rest)
        if let p = ArtifactName.problem(with: name) { throw ModelError("'\(text)': bad name '\(name)': \(p)") }
        return RefSpec(kind: kind, name: name, selector: selector, split: split)
    }

    /// True when `text` could be an object id prefix (6 to 64 lowercase hex digits).
    public static func isIDPrefix(_ text: String) -> Bool {
        (6...64).contains(text.utf8.count) && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    public var description: String {
        var s = (kind.map { "\($0):" } ?? "") + name
        switch selector {
        case .version(let n): s += "@v\(n)"
        case .alias(let a): s += "@\(a)"
        }
        if let split { s += "#\(split)" }
        return s
    }
}
