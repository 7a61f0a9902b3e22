import MLVBasics
import MLVModel
#if canImport(Glibc)
import Glibc
#endif

/// Where a text field of a row lies in `LineageRows.bytes` (`count` -1: absent).
struct ByteSpan: Sendable {
    var start: Int32
    var count: Int32
    static let none = ByteSpan(start: 0, count: -1)
}

/// Lineage node rows held column by column, their text in one byte array, so a walk over
/// a whole history makes no `String` per node: a row becomes a `LineageNode` (or just its
/// display) only when asked. Rows whose object is missing hold only their key.
struct LineageRows: Sendable {
    var bytes: [UInt8] = []
    var key: [ByteSpan] = []
    /// The kind's index in `LineageKind.allCases`; -1 for a key whose object is missing.
    var kind: [Int8] = []
    /// Index into `names`.
    var name: [Int32] = []
    /// `Int32.min` for none.
    var version: [Int32] = []
    var created: [ByteSpan] = []
    /// Count 0: the id is the key (every manifest's key is its id in hex).
    var id: [ByteSpan] = []
    var root: [ByteSpan] = []
    var commit: [ByteSpan] = []
    /// Each distinct name once.
    var names: [String] = []
    var nameIndex: [String: Int32] = [:]
    /// Whether every key and creation time is ASCII, so byte order is `String` order.
    var ascii = true
    /// Which source's table of every node these rows are (0: none).
    var tag = 0

    var count: Int { key.count }

    init() {}

    mutating func reserve(_ n: Int, bytes b: Int) {
        bytes.reserveCapacity(b)
        for i in [\LineageRows.key, \.created, \.id, \.root, \.commit] as [WritableKeyPath<LineageRows, [ByteSpan]>] {
            self[keyPath: i].reserveCapacity(n)
        }
        kind.reserveCapacity(n)
        name.reserveCapacity(n)
        version.reserveCapacity(n)
    }

    mutating func span(_ b: UnsafeBufferPointer<UInt8>?, checkASCII: Bool = false) -> ByteSpan {
        guard let b else { return .none }
        let s = ByteSpan(start: Int32(bytes.count), count: Int32(b.count))
        bytes.append(contentsOf: b)
        if checkASCII, ascii, b.contains(where: { $0 >= 0x80 }) { ascii = false }
        return s
    }

    mutating func span(_ text: String?, checkASCII: Bool = false) -> ByteSpan {
        guard var text else { return .none }
        return text.withUTF8 { span($0, checkASCII: checkASCII) }
    }

    mutating func intern(_ n: String) -> Int32 {
        if let i = nameIndex[n] { return i }
        let i = Int32(names.count)
        names.append(n)
        nameIndex[n] = i
        return i
    }

    /// Appends a row for `key` with no object.
    @discardableResult
    mutating func appendMissing(key k: String) -> Int32 {
        key.append(span(k, checkASCII: true))
        kind.append(-1)
        name.append(-1)
        version.append(.min)
        for p in [\LineageRows.created, \.id, \.root, \.commit] as [WritableKeyPath<LineageRows, [ByteSpan]>] {
            self[keyPath: p].append(.none)
        }
        return Int32(count - 1)
    }

    /// Appends `node`'s row.
    @discardableResult
    mutating func append(_ node: LineageNode) -> Int32 {
        key.append(span(node.key, checkASCII: true))
        kind.append(Int8(node.kind.ordinal))
        name.append(intern(node.name))
        version.append(node.version.map { Int32(clamping: $0) } ?? .min)
        created.append(span(node.created, checkASCII: true))
        id.append(node.id.hex == node.key ? ByteSpan(start: 0, count: 0) : span(node.id.hex))
        root.append(span(node.root?.hex))
        commit.append(span(node.commit))
        return Int32(count - 1)
    }

    /// Appends a copy of row `r` of `other`.
    @discardableResult
    mutating func append(row r: Int, of other: LineageRows) -> Int32 {
        if other.kind[r] < 0 { return appendMissing(key: other.key(r)) }
        return append(other.node(r)!)
    }

    func string(_ s: ByteSpan) -> String? {
        guard s.count >= 0 else { return nil }
        return bytes.withUnsafeBufferPointer {
            String(decoding: UnsafeBufferPointer(rebasing: $0[Int(s.start)..<Int(s.start + s.count)]), as: UTF8.self)
        }
    }

    func key(_ r: Int) -> String { string(key[r]) ?? "" }

    func kindOf(_ r: Int) -> LineageKind? { kind[r] < 0 ? nil : LineageKind.allCases[Int(kind[r])] }

    func versionOf(_ r: Int) -> Int? { version[r] == .min ? nil : Int(version[r]) }

    /// The id in hex: the key's bytes unless the row stores its own.
    func idSpan(_ r: Int) -> ByteSpan { id[r].count == 0 ? key[r] : id[r] }

    /// Row `r` as a node; nil when its object is missing.
    func node(_ r: Int) -> LineageNode? {
        guard let kind = kindOf(r), let id = objectID(idSpan(r)) else { return nil }
        let rootSpan = root[r]
        return LineageNode(key: key(r), kind: kind, name: names[Int(name[r])], version: versionOf(r), id: id,
                           created: string(created[r]) ?? "", root: rootSpan.count < 0 ? nil : objectID(rootSpan),
                           commit: string(commit[r]))
    }

    private func objectID(_ s: ByteSpan) -> ObjectID? {
        guard s.count == 64 else { return nil }
        return bytes.withUnsafeBufferPointer { ObjectID(hexBytes: UnsafeBufferPointer(rebasing: $0[Int(s.start)..<Int(s.start + 64)])) }
    }

    /// How row `r` is shown (`LineageNode.display`), without decoding the rest of the row.
    func display(_ r: Int) -> String {
        guard let kind = kindOf(r) else { return "missing object \(prefix(key[r], 12))" }
        return LineageNode.display(kind: kind, name: names[Int(name[r])], version: versionOf(r),
                                   idShort: prefix(idSpan(r), 12), keyPrefix: prefix(key[r], 8))
    }

    private func prefix(_ s: ByteSpan, _ n: Int32) -> String {
        string(ByteSpan(start: s.start, count: min(s.count, n))) ?? ""
    }

    /// Calls `body` with a view comparing rows by their text (valid only inside `body`;
    /// sorting through it copies no arrays per comparison).
    func withOrder<R>(_ body: (RowOrder) throws -> R) rethrows -> R {
        try bytes.withUnsafeBufferPointer { b in
            try key.withUnsafeBufferPointer { k in
                try created.withUnsafeBufferPointer { c in
                    try body(RowOrder(bytes: b.baseAddress ?? UnsafePointer(bitPattern: 1)!, key: k, created: c, ascii: ascii,
                                      strings: ascii ? nil : self))
                }
            }
        }
    }
}

/// Compares rows of `LineageRows` by key, or by creation time then key, as `String`s
/// order them: by bytes when all are ASCII (first eight bytes as one integer), by
/// strings otherwise.
struct RowOrder {
    let bytes: UnsafePointer<UInt8>
    let key: UnsafeBufferPointer<ByteSpan>
    let created: UnsafeBufferPointer<ByteSpan>
    let ascii: Bool
    let strings: LineageRows?

    @inline(__always)
    private func compare(_ a: ByteSpan, _ b: ByteSpan) -> Int {
        let n = Int(min(a.count, b.count))
        let pa = bytes + Int(a.start), pb = bytes + Int(b.start)
        if n >= 8 {
            let x = UInt64(bigEndian: UnsafeRawPointer(pa).loadUnaligned(as: UInt64.self))
            let y = UInt64(bigEndian: UnsafeRawPointer(pb).loadUnaligned(as: UInt64.self))
            if x != y { return x < y ? -1 : 1 }
        }
        let c = n > 0 ? memcmp(pa, pb, n) : 0
        if c != 0 { return c < 0 ? -1 : 1 }
        return a.count == b.count ? 0 : a.count < b.count ? -1 : 1
    }

    /// The first eight bytes of a span as one big-endian integer (zero-padded), so most
    /// comparisons of keys are one integer comparison.
    @inline(__always)
    private func prefix(_ a: ByteSpan) -> UInt64 {
        let p = bytes + Int(a.start)
        if a.count >= 8 { return UInt64(bigEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self)) }
        var x: UInt64 = 0
        for i in 0..<8 { x = x << 8 | UInt64(i < Int(a.count) ? p[i] : 0) }
        return x
    }

    /// Indices of `rows` in key order.
    func sortedByKey(_ rows: [Int32]) -> [Int] {
        guard strings == nil else { return rows.indices.sorted { keyLess(Int(rows[$0]), Int(rows[$1])) } }
        let prefixes = rows.map { prefix(key[Int($0)]) }
        return rows.indices.sorted { a, b in
            let (x, y) = (prefixes[a], prefixes[b])
            return x != y ? x < y : compare(key[Int(rows[a])], key[Int(rows[b])]) < 0
        }
    }

    /// Whether row `a`'s key sorts before row `b`'s.
    func keyLess(_ a: Int, _ b: Int) -> Bool {
        guard let strings else { return compare(key[a], key[b]) < 0 }
        return strings.key(a) < strings.key(b)
    }

    /// Whether row `a` sorts before row `b` by (created, key).
    func createdThenKeyLess(_ a: Int, _ b: Int) -> Bool {
        guard let s = strings else {
            let c = compare(created[a], created[b])
            return c != 0 ? c < 0 : compare(key[a], key[b]) < 0
        }
        return (s.string(s.created[a]) ?? "", s.key(a)) < (s.string(s.created[b]) ?? "", s.key(b))
    }
}

extension LineageKind {
    /// The index in `allCases` (the index stores kinds by it).
    var ordinal: Int {
        switch self {
        case .dataset: return 0
        case .model: return 1
        case .run: return 2
        case .code: return 3
        }
    }
}

extension ObjectID {
    private static let zero = ObjectID(digest: [UInt8](repeating: 0, count: 32))

    /// Parses 64 hex digits from bytes (no `String` made); nil for anything else.
    init?(hexBytes b: UnsafeBufferPointer<UInt8>) {
        guard b.count == 64 else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for i in 0..<64 {
            guard let v = Hex.value(of: b[i]) else { return nil }
            switch i >> 4 {
            case 0: words.0 = words.0 << 4 | UInt64(v)
            case 1: words.1 = words.1 << 4 | UInt64(v)
            case 2: words.2 = words.2 << 4 | UInt64(v)
            default: words.3 = words.3 << 4 | UInt64(v)
            }
        }
        self = Self.zero
        w0 = words.0; w1 = words.1; w2 = words.2; w3 = words.3
    }
}
