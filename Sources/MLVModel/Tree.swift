import MLVBasics

/// One directory listing (`mlv.tree/1`), stored as canonical JSON:
///
///     {"entries":[{"id":"<hex>","kind":"file","mode":420,"name":"a.csv","size":12}, ...],
///      "schema":"mlv.tree/1"}
///
/// Entries are sorted by the UTF-8 bytes of their names and names are unique. `kind` is
/// `file` (id: blob), `dir` (id: tree; size: total bytes below) or `symlink` (`target`
/// instead of id; size: the target's length). `mode` is the permission bits.
public struct Tree: Sendable, Equatable {
    public static let schema = "mlv.tree/1"

    public enum Kind: String, Sendable { case file, dir, symlink }

    public struct Entry: Sendable, Equatable {
        public var name: String
        public var kind: Kind
        public var mode: UInt32
        public var size: Int64
        /// Blob id for files, tree id for directories, nil for symlinks.
        public var id: ObjectID?
        /// Symlink target, nil otherwise.
        public var target: String?
        /// Number of files below, for directories (not stored; filled when known).
        public init(name: String, kind: Kind, mode: UInt32, size: Int64, id: ObjectID?, target: String? = nil) {
            self.name = name; self.kind = kind; self.mode = mode; self.size = size; self.id = id; self.target = target
        }
    }

    public var entries: [Entry]

    /// Sorts `entries` by name bytes.
    public init(entries: [Entry]) {
        var sorted = true
        for i in entries.indices.dropFirst() where !utf8Less(entries[i - 1].name, entries[i].name) {
            sorted = false
            break
        }
        self.entries = sorted ? entries : entries.sorted { utf8Less($0.name, $1.name) }
    }

    private init(sorted: [Entry]) { entries = sorted }

    public var totalSize: Int64 { entries.reduce(0) { $0 + $1.size } }

    /// The canonical encoding, written directly (trees can hold 100,000 entries).
    public func canonicalBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32 + entries.count * 140)
        out.append(contentsOf: #"{"entries":["#.utf8)
        for (i, e) in entries.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "{"))
            if let id = e.id {
                out.append(contentsOf: #""id":""#.utf8)
                id.appendHex(to: &out)
                out.append(contentsOf: #"","#.utf8)
            }
            out.append(contentsOf: #""kind":""#.utf8)
            switch e.kind {
            case .file: out.append(contentsOf: "file".utf8)
            case .dir: out.append(contentsOf: "dir".utf8)
            case .symlink: out.append(contentsOf: "symlink".utf8)
            }
            out.append(contentsOf: #"","mode":"#.utf8)
            JSON.appendInt(Int64(e.mode), to: &out)
            out.append(contentsOf: #","name":"#.utf8)
            JSON.appendEscapedString(e.name, to: &out)
            out.append(contentsOf: #","size":"#.utf8)
            JSON.appendInt(e.size, to: &out)
            if let t = e.target {
                out.append(contentsOf: #","target":"#.utf8)
                JSON.appendEscapedString(t, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #"],"schema":"mlv.tree/1"}"#.utf8)
        return out
    }

    public var id: ObjectID { SHA256.hash(canonicalBytes()) }

    /// Decodes and validates a stored tree: schema, field types, sorted unique names,
    /// and every name allowed by `PathRules`.
    /// - Throws: `ModelError` naming the offending entry, or `JSONError`.
    public static func decode(_ bytes: [UInt8]) throws -> Tree {
        let json = try JSON.parse(bytes)
        guard json["schema"]?.string == schema else {
            throw ModelError("not a tree (schema \(json["schema"]?.string ?? "missing"))")
        }
        guard let list = json["entries"]?.array else { throw ModelError("tree has no entries list") }
        var entries: [Entry] = []
        entries.reserveCapacity(list.count)
        for item in list {
            guard let name = item["name"]?.string else { throw ModelError("tree entry without a name") }
            if let p = PathRules.problem(withName: name) { throw ModelError("unsafe name '\(escaped(name))' in tree: \(p)") }
            guard let kindText = item["kind"]?.string, let kind = Kind(rawValue: kindText) else {
                throw ModelError("entry '\(escaped(name))' has an unknown kind")
            }
            guard let mode = item["mode"]?.int, (0...0o7777).contains(mode) else {
                throw ModelError("entry '\(escaped(name))' has a bad mode")
            }
            guard let size = item["size"]?.int, size >= 0 else { throw ModelError("entry '\(escaped(name))' has a bad size") }
            var id: ObjectID?
            var target: String?
            if kind == .symlink {
                guard let t = item["target"]?.string, !t.isEmpty, !t.contains("\0") else {
                    throw ModelError("symlink '\(escaped(name))' has no target")
                }
                target = t
            } else {
                guard let hex = item["id"]?.string, let parsed = ObjectID(hex: hex), Hex.isLowerHex(hex) else {
                    throw ModelError("entry '\(escaped(name))' has no valid id")
                }
                id = parsed
            }
            if let last = entries.last, !utf8Less(last.name, name) {
                throw ModelError("tree entries not sorted or duplicated at '\(escaped(name))'")
            }
            entries.append(Entry(name: name, kind: kind, mode: UInt32(mode), size: size, id: id, target: target))
        }
        if let clash = PathRules.firstCollision(entries.map(\.name)) {
            throw ModelError("names collide on a case-insensitive file system: '\(escaped(clash))'")
        }
        let tree = Tree(sorted: entries)
        guard tree.canonicalBytes() == bytes else { throw ModelError("tree is not in canonical form") }
        return tree
    }
}

/// A name made printable for messages: control characters become `\u{..}`.
public func escaped(_ s: String) -> String {
    var out = ""
    for u in s.unicodeScalars {
        if u.value < 0x20 || u.value == 0x7F { out += "\\u{\(String(u.value, radix: 16))}" } else { out.unicodeScalars.append(u) }
    }
    return out
}
