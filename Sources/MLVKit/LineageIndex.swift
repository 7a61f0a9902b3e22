import MLVBasics
import MLVModel
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// The derived lineage index, `.mlv/index.sqlite`: nodes, edges (both directions), run
/// params and metrics, and which trees hold which blobs, for fast upstream, downstream
/// and blob queries. Everything in it is read from refs and manifests; `dirs` records a
/// signature (mtime, inode, size) of each ref directory as of its last sync, so a ref
/// created by anyone that did not update the index is found and added on the next query.
///
/// Every key (a node's, or an edge end's whose object is not indexed: `kind` NULL) has a
/// row in `nodes` and so an integer `n`, its handle; edges are (parent, child, label)
/// integer triples, labels (role, split) numbered in `labels`. A walk reaching a large
/// part of the history reads the whole edge table once into arrays (`Adjacency`) and the
/// whole node table into columns (`WholeLineage`), instead of looking rows up level by
/// level, and keeps what it read as one blob in `snapshot` for the next such walk. Every
/// sync that changes nodes or edges bumps `generation` in `meta`; a snapshot of another
/// generation is read as absent.
final class LineageIndex: LineageSource, LineageSink {
    /// Bumped whenever the tables change; an index with another number is rebuilt.
    static let schemaVersion = "3"
    /// Below this many handles asked for at once, rows and edges are looked up; from it
    /// on, the whole table is read (tests lower it to exercise both ways).
    var wholeTableThreshold = 2048
    let db: SQLiteDatabase
    private var statements: [String: SQLiteStatement] = [:]
    /// While syncing (inside its transaction): each key's handle and whether it is a node,
    /// and each label's number, so repeated keys cost no query.
    private var syncCache: (handles: [String: (n: Int64, node: Bool)], labels: [EdgeLabel: Int64])?
    /// Whether the node table was empty when the sync began (a rebuild): the cache then
    /// holds every key there is, and a key it lacks needs no query.
    private var emptied = false
    private var cacheIsComplete = false
    private var whole: WholeLineage?
    private var wholeGeneration = ""
    /// A snapshot read from the tables in a `reading` block, stored when it ends.
    private var pendingSnapshot: (generation: String, data: [UInt8])?
    /// Whether this sync changed nodes or edges.
    private var changed = false
    /// What this sync changed, kept when the snapshot (with its deltas) was current as
    /// the sync began: stored as the delta to the generation the sync moves to.
    private var delta: (handles: Set<Int64>, edges: [(Int64, Int64, Int64)])?
    /// A sync changing more rows and edges than this stores no delta: the next large
    /// walk reads the tables.
    static let deltaLimit = 50_000
    /// Once a large walk has read this many deltas, it stores a new snapshot (tests lower it).
    var deltasBeforeSnapshot = 32
    private var requested = 0
    private let tag = Int.random(in: 1...Int.max)

    /// Opens or creates the index; an index of another schema version is emptied.
    /// - Throws: `SQLiteError` when the file cannot be opened or is not a database.
    /// - Parameter fresh: a new file being built whole (no rollback journal: a failed
    ///   build is discarded, never opened).
    init(path: String, fresh: Bool = false) throws {
        db = try SQLiteDatabase(path: path)
        // Reads through a memory map: a walk over a whole history reads the node and edge
        // tables once, and copying their pages into SQLite's cache would only cost.
        try db.execute("PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-32768; PRAGMA mmap_size=1073741824")
        if fresh {
            try db.execute("PRAGMA journal_mode=OFF")
            emptied = true
        }
        try db.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
        let version = try query("SELECT value FROM meta WHERE key='schema'", []) { $0.text(0) }.first ?? nil
        if version != Self.schemaVersion {
            try db.transaction {
                for t in ["nodes", "edges", "labels", "params", "metrics", "trees", "entries", "dirs", "snapshot", "snapshot_delta"] {
                    try db.execute("DROP TABLE IF EXISTS \(t)")
                }
                try db.execute("""
                    CREATE TABLE nodes(n INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, kind INTEGER, name TEXT, version INTEGER,
                                       created TEXT, id TEXT, root TEXT, git_commit TEXT);
                    CREATE INDEX nodes_root ON nodes(root) WHERE root IS NOT NULL;
                    CREATE INDEX nodes_kind ON nodes(kind);
                    CREATE TABLE labels(label INTEGER PRIMARY KEY, role TEXT NOT NULL, split TEXT NOT NULL, UNIQUE(role, split));
                    CREATE TABLE edges(parent INTEGER NOT NULL, child INTEGER NOT NULL, label INTEGER NOT NULL,
                                       PRIMARY KEY(parent, child, label)) WITHOUT ROWID;
                    CREATE INDEX edges_child ON edges(child);
                    CREATE TABLE params(run TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(run, key)) WITHOUT ROWID;
                    CREATE TABLE metrics(run TEXT NOT NULL, key TEXT NOT NULL, value REAL, PRIMARY KEY(run, key)) WITHOUT ROWID;
                    CREATE TABLE trees(id TEXT PRIMARY KEY) WITHOUT ROWID;
                    CREATE TABLE entries(tree TEXT NOT NULL, name TEXT NOT NULL, child TEXT NOT NULL, dir INTEGER NOT NULL,
                                         PRIMARY KEY(tree, name)) WITHOUT ROWID;
                    CREATE INDEX entries_child ON entries(child);
                    CREATE TABLE dirs(path TEXT PRIMARY KEY, sig TEXT NOT NULL) WITHOUT ROWID;
                    CREATE TABLE snapshot(part TEXT PRIMARY KEY, generation TEXT NOT NULL, data BLOB NOT NULL);
                    INSERT OR REPLACE INTO meta(key, value) VALUES('schema', '\(Self.schemaVersion)');
                    """)
            }
            emptied = true
        }
        // Added after schema 3 without a bump (an index without it just has no deltas).
        try db.execute("CREATE TABLE IF NOT EXISTS snapshot_delta(generation INTEGER PRIMARY KEY, data BLOB NOT NULL)")
    }

    private func statement(_ sql: String) throws -> SQLiteStatement {
        if let s = statements[sql] { return s }
        let s = try db.prepare(sql)
        statements[sql] = s
        return s
    }

    private func query<T>(_ sql: String, _ values: [SQLiteValue], _ row: (SQLiteStatement) throws -> T) throws -> [T] {
        var out: [T] = []
        try statement(sql).forEachRow(values) { out.append(try row($0)) }
        return out
    }

    /// `[1,2,3]`: a list of handles bound as one parameter, read back with `json_each`.
    private static func jsonList(_ handles: [Int32]) -> SQLiteValue {
        var text = "["
        text.reserveCapacity(handles.count * 7 + 2)
        for (i, h) in handles.enumerated() {
            if i > 0 { text += "," }
            text += String(h)
        }
        return .text(text + "]")
    }

    // MARK: LineageSource

    private static let rowColumns = "n, key, kind, name, version, created, id, root, git_commit"

    /// Appends the current row (columns `rowColumns`) to `rows`.
    private static func appendRow(_ s: SQLiteStatement, to rows: inout LineageRows) {
        rows.key.append(rows.span(s.bytes(1), checkASCII: true))
        guard !s.isNull(2) else {
            rows.kind.append(-1)
            rows.name.append(-1)
            rows.version.append(.min)
            rows.created.append(.none)
            rows.id.append(.none)
            rows.root.append(.none)
            rows.commit.append(.none)
            return
        }
        rows.kind.append(Int8(truncatingIfNeeded: s.int(2)))
        // Rows in a run often share a name: compare with the last one before hashing.
        if let b = s.bytes(3), let last = rows.name.last(where: { $0 >= 0 }), rows.names[Int(last)].utf8.elementsEqual(b) {
            rows.name.append(last)
        } else {
            rows.name.append(rows.intern(s.text(3) ?? ""))
        }
        rows.version.append(s.isNull(4) ? .min : Int32(clamping: s.int(4)))
        rows.created.append(rows.span(s.bytes(5), checkASCII: true))
        rows.id.append(s.isNull(6) ? ByteSpan(start: 0, count: 0) : rows.span(s.bytes(6)))
        rows.root.append(rows.span(s.bytes(7)))
        rows.commit.append(rows.span(s.bytes(8)))
    }

    func nodes(_ keys: [String]) throws -> [String: LineageNode] {
        var out: [String: LineageNode] = [:]
        var rows = LineageRows()
        let s = try statement("SELECT \(Self.rowColumns) FROM nodes WHERE key = ? AND kind IS NOT NULL")
        for key in keys {
            try s.forEachRow([.text(key)]) { Self.appendRow($0, to: &rows) }
        }
        for r in 0..<rows.count { if let n = rows.node(r) { out[n.key] = n } }
        return out
    }

    /// One read transaction (a savepoint, so it nests): another process's rebuild cannot
    /// renumber handles in the middle of a walk.
    func reading<T>(_ body: () throws -> T) throws -> T {
        try db.execute("SAVEPOINT reading")
        // What this object read before is void once another process changed the index.
        if whole != nil, (try? generation()) != wholeGeneration { whole = nil }
        let result: T
        do {
            result = try body()
        } catch {
            try? db.execute("RELEASE reading")
            throw error
        }
        try? db.execute("RELEASE reading")
        if let pending = pendingSnapshot {
            // Stored only if no sync changed the index since it was read; a failure
            // (busy, read-only) just leaves the next large walk to read the tables again.
            pendingSnapshot = nil
            try? db.transaction {
                try statement("""
                    INSERT OR REPLACE INTO snapshot(part, generation, data)
                    SELECT 'walk', ?1, ?2 WHERE coalesce((SELECT value FROM meta WHERE key = 'generation'), '0') = ?1
                    """).run([.text(pending.generation), .blob(pending.data)])
                if db.changes > 0 {
                    try statement("DELETE FROM snapshot_delta WHERE generation <= CAST(? AS INTEGER)").run([.text(pending.generation)])
                }
            }
        }
        return result
    }

    /// The node and edge tables, read whole.
    func readTables() throws -> WholeLineage {
        let limit = try handleLimit()
        let (up, down) = try Adjacency.load(db.prepare("SELECT parent, child, label FROM edges"), limit: limit)
        var all = LineageRows()
        var rowOf = [Int32](repeating: -1, count: limit)
        let count = Int(try query("SELECT count(*) FROM nodes", []) { $0.int(0) }.first ?? 0)
        all.reserve(count, bytes: count * 128)
        try db.prepare("SELECT \(Self.rowColumns) FROM nodes").forEachRow { s in
            let n = Int(s.int(0))
            if n < rowOf.count { rowOf[n] = Int32(all.count) }
            Self.appendRow(s, to: &all)
        }
        return WholeLineage(rows: all, rowOf: rowOf, up: up, down: down)
    }

    /// The snapshot's row and the deltas from its generation up to `current`, oldest first: none when
    /// the snapshot is current; nil when it is missing, or any delta in between is
    /// missing, of another format or damaged (the chain must be whole, or a change the
    /// snapshot lacks would be missed).
    private func deltas(upTo current: Int64) throws -> (snapshot: Int64, deltas: [LineageDelta])? {
        let found = try query("SELECT rowid, CAST(generation AS INTEGER) FROM snapshot WHERE part = 'walk'", []) { ($0.int(0), $0.int(1)) }.first
        guard let (rowid, base) = found, base <= current else { return nil }
        if base == current { return (rowid, []) }
        var out: [LineageDelta] = []
        var expected = base + 1
        var broken = false
        try statement("SELECT generation, rowid FROM snapshot_delta WHERE generation > ? AND generation <= ? ORDER BY generation")
            .forEachRow([.int(base), .int(current)]) { s in
                guard !broken else { return }
                guard s.int(0) == expected, let blob = try? db.openBlob(table: "snapshot_delta", column: "data", rowid: s.int(1)),
                      let delta = LineageDelta(reading: BinaryReader(blob: blob)) else {
                    broken = true
                    return
                }
                out.append(delta)
                expected += 1
            }
        return broken || expected != current + 1 ? nil : (rowid, out)
    }

    /// Bumped by every sync that changes nodes or edges ("0" before the first).
    private func generation() throws -> String {
        try query("SELECT value FROM meta WHERE key = 'generation'", []) { $0.text(0) ?? "0" }.first ?? "0"
    }

    /// The whole index in memory: from the snapshot when it is of the current generation,
    /// or of an older one with a delta for every generation since (applied in order);
    /// else read from the tables (and stored as the snapshot when the reading ends, as
    /// it is too once many deltas were applied).
    func wholeLineage() throws -> WholeLineage {
        if let whole { return whole }
        let generation = try generation()
        var found: WholeLineage?
        if let current = Int64(generation), let (rowid, deltas) = try deltas(upTo: current),
           let blob = try? db.openBlob(table: "snapshot", column: "data", rowid: rowid) {
            found = WholeLineage(reading: BinaryReader(blob: blob))
            if !deltas.isEmpty {
                found?.apply(deltas)
                // A cross-check against the tables (two counts, no rows read): a change some
                // writer made without recording it in a delta is not served.
                let counts = try query("SELECT (SELECT count(*) FROM nodes), (SELECT count(*) FROM edges)", []) { ($0.int(0), $0.int(1)) }.first
                if let f = found, let counts,
                   counts != (Int64(f.rowOf.lazy.filter { $0 >= 0 }.count), Int64(f.down.other.count)) { found = nil }
                if let f = found, deltas.count >= deltasBeforeSnapshot { pendingSnapshot = (generation, f.encoded()) }
            }
        }
        if found == nil {
            let built = try readTables()
            pendingSnapshot = (generation, built.encoded())
            found = built
        }
        found!.rows.tag = tag
        whole = found
        wholeGeneration = generation
        return found!
    }

    func handles(_ keys: [String]) throws -> [Int32?] {
        let s = try statement("SELECT n FROM nodes WHERE key = ?")
        return try keys.map { key in
            var h: Int32?
            try s.forEachRow([.text(key)]) { h = Int32(truncatingIfNeeded: $0.int(0)) }
            return h
        }
    }

    func handleLimit() throws -> Int {
        Int(try query("SELECT coalesce(max(n), 0) FROM nodes", []) { $0.int(0) }.first ?? 0) + 1
    }

    func labels() throws -> [EdgeLabel] {
        var out: [EdgeLabel] = []
        try statement("SELECT label, role, split FROM labels ORDER BY label").forEachRow { s in
            let i = Int(s.int(0))
            while out.count <= i { out.append(EdgeLabel(role: "", split: nil)) }
            let split = s.text(2) ?? ""
            out[i] = EdgeLabel(role: s.text(1) ?? "", split: split.isEmpty ? nil : split)
        }
        return out
    }

    func edges(of handles: [Int32], _ direction: LineageDirection) throws -> [IntEdge] {
        requested += handles.count
        if whole != nil || handles.count >= wholeTableThreshold || requested >= 4 * wholeTableThreshold {
            let adjacency = try wholeLineage()
            switch direction {
            case .up: return adjacency.up.edges(of: handles)
            case .down: return adjacency.down.edges(of: handles)
            case .both: return adjacency.up.edges(of: handles) + adjacency.down.edges(of: handles)
            }
        }
        func select(_ column: String) throws -> [IntEdge] {
            var out: [IntEdge] = []
            try statement("SELECT parent, child, label FROM edges WHERE \(column) IN (SELECT value FROM json_each(?))")
                .forEachRow([Self.jsonList(handles)]) { s in
                    out.append(IntEdge(parent: Int32(truncatingIfNeeded: s.int(0)), child: Int32(truncatingIfNeeded: s.int(1)),
                                       label: Int32(truncatingIfNeeded: s.int(2))))
                }
            return out
        }
        switch direction {
        case .up: return try select("child")
        case .down: return try select("parent")
        case .both: return try select("child") + select("parent")
        }
    }

    func rows(_ handles: [Int32], into rows: inout LineageRows) throws -> (rows: [Int32], replaced: Bool) {
        if whole != nil || handles.count >= wholeTableThreshold || rows.count + handles.count >= 4 * wholeTableThreshold {
            let whole = try wholeLineage()
            let replaced = rows.tag != tag
            if replaced { rows = whole.rows }
            return (handles.map { whole.rowOf[Int($0)] }, replaced)
        }
        // Looked up: each row says which handle it answers.
        var out = [Int32](repeating: -1, count: handles.count)
        var index: [Int32: [Int]] = [:]
        for (i, h) in handles.enumerated() { index[h, default: []].append(i) }
        try statement("SELECT \(Self.rowColumns) FROM nodes WHERE n IN (SELECT value FROM json_each(?))")
            .forEachRow([Self.jsonList(handles)]) { s in
                let r = Int32(rows.count)
                Self.appendRow(s, to: &rows)
                for i in index[Int32(truncatingIfNeeded: s.int(0))] ?? [] { out[i] = r }
            }
        for i in out.indices where out[i] < 0 { out[i] = rows.appendMissing(key: "") }  // not in a snapshot: cannot happen
        return (out, false)
    }

    func containers(ofBlob prefix: String) throws -> [BlobHit] {
        try query("""
            WITH RECURSIVE up(tree, path, blob) AS (
              SELECT tree, name, child FROM entries WHERE child >= ?1 AND child < ?2 AND dir = 0
              UNION ALL SELECT e.tree, e.name || '/' || up.path, up.blob FROM entries e JOIN up ON e.child = up.tree)
            SELECT n.key, up.path, up.blob FROM up JOIN nodes n ON n.root = up.tree
            """, [.text(prefix), .text(prefix + "g")]) { s in
            BlobHit(key: s.text(0) ?? "", path: s.text(1) ?? "", blob: ObjectID(hex: s.text(2) ?? "")!)
        }
    }

    func codeFiles(path: String) throws -> [BlobHit] {
        let parts = path.split(separator: "/").map(String.init)
        guard !parts.isEmpty else { return [] }
        var sql = "SELECT n.key, e\(parts.count).child FROM nodes n"
        var previous = "n.root"
        for i in 1...parts.count {
            sql += " JOIN entries e\(i) ON e\(i).tree = \(previous) AND e\(i).name = ?\(i) AND e\(i).dir = \(i == parts.count ? 0 : 1)"
            previous = "e\(i).child"
        }
        sql += " WHERE n.kind = \(LineageKind.code.ordinal)"
        return try query(sql, parts.map { .text($0) }) { s in
            BlobHit(key: s.text(0) ?? "", path: path, blob: ObjectID(hex: s.text(1) ?? "")!)
        }
    }

    func runCommits() throws -> [(key: String, commit: String)] {
        try query("SELECT key, git_commit FROM nodes WHERE git_commit IS NOT NULL ORDER BY key", []) { ($0.text(0) ?? "", $0.text(1) ?? "") }
    }

    // MARK: LineageSink

    /// Runs `body` (a sync, inside its transaction) with keys and labels cached.
    /// A sync that changed nodes or edges bumps the generation (so snapshots of the old
    /// contents are no longer read).
    func syncing<T>(_ body: () throws -> T) throws -> T {
        syncCache = ([:], [:])
        cacheIsComplete = emptied
        changed = false
        let before = try generation()
        // A delta is worth keeping only on top of a snapshot whose chain reaches this
        // generation (never during a rebuild: it emptied the snapshot).
        delta = try !emptied && snapshotReaches(before) ? ([], []) : nil
        emptied = false
        defer {
            syncCache = nil
            cacheIsComplete = false
            delta = nil
        }
        let result = try body()
        if changed {
            try db.execute("""
                INSERT INTO meta(key, value) VALUES('generation', '1')
                ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)
                """)
            whole = nil
            if let delta, delta.handles.count + delta.edges.count <= Self.deltaLimit, let old = Int64(before) {
                try storeDelta(delta, generation: old + 1)
            }
        }
        return result
    }

    /// Whether the snapshot is of `generation`, or a delta to it is stored (deltas are
    /// stored only on top of a whole chain; `deltas(upTo:)` checks the chain when read).
    private func snapshotReaches(_ generation: String) throws -> Bool {
        guard let g = Int64(generation) else { return false }
        return try !query("""
            SELECT 1 FROM snapshot WHERE part = 'walk' AND generation = ?1
            UNION ALL SELECT 1 FROM snapshot_delta WHERE generation = ?2 LIMIT 1
            """, [.text(generation), .int(g)]) { _ in () }.isEmpty
    }

    /// Stores what this sync changed as the delta to `generation`: the changed rows as
    /// they are now, and the new edges.
    private func storeDelta(_ changes: (handles: Set<Int64>, edges: [(Int64, Int64, Int64)]), generation: Int64) throws {
        var d = LineageDelta()
        let handles = changes.handles.sorted().map { Int32(truncatingIfNeeded: $0) }
        try statement("SELECT \(Self.rowColumns) FROM nodes WHERE n IN (SELECT value FROM json_each(?))")
            .forEachRow([Self.jsonList(handles)]) { s in
                d.handles.append(Int32(truncatingIfNeeded: s.int(0)))
                Self.appendRow(s, to: &d.rows)
            }
        for (p, c, l) in changes.edges {
            d.parent.append(Int32(truncatingIfNeeded: p))
            d.child.append(Int32(truncatingIfNeeded: c))
            d.label.append(Int32(truncatingIfNeeded: l))
        }
        try statement("INSERT OR REPLACE INTO snapshot_delta(generation, data) VALUES(?, ?)").run([.int(generation), .blob(d.encoded())])
    }

    /// The handle of `key` and whether it is a node; nil when the index has no row for it.
    private func lookup(_ key: String) throws -> (n: Int64, node: Bool)? {
        if let hit = syncCache?.handles[key] { return hit }
        if cacheIsComplete { return nil }
        var found: (n: Int64, node: Bool)?
        try statement("SELECT n, kind IS NOT NULL FROM nodes WHERE key = ?").forEachRow([.text(key)]) { found = ($0.int(0), $0.int(1) != 0) }
        if let found { syncCache?.handles[key] = found }
        return found
    }

    /// The handle of `key`, adding a key-only row when it has none.
    private func handle(_ key: String) throws -> Int64 {
        if let found = try lookup(key) { return found.n }
        try statement("INSERT INTO nodes(key) VALUES(?)").run([.text(key)])
        changed = true
        let n = db.lastInsertRowID
        delta?.handles.insert(n)
        syncCache?.handles[key] = (n, false)
        return n
    }

    private func label(_ role: String, _ split: String?) throws -> Int64 {
        let l = EdgeLabel(role: role, split: split ?? "")
        if let n = syncCache?.labels[l] { return n }
        try statement("INSERT OR IGNORE INTO labels(role, split) VALUES(?, ?)").run([.text(role), .text(split ?? "")])
        let n = try query("SELECT label FROM labels WHERE role = ? AND split = ?", [.text(role), .text(split ?? "")]) { $0.int(0) }.first ?? 0
        syncCache?.labels[l] = n
        return n
    }

    func hasNode(_ key: String) throws -> Bool {
        try lookup(key)?.node ?? false
    }

    func addNode(_ node: LineageNode, edges: [LineageEdge], params: [String: String], metrics: [String: Double]) throws {
        let values: [SQLiteValue] = [
            .int(Int64(node.kind.ordinal)), .text(node.name), node.version.map { .int(Int64($0)) } ?? .null, .text(node.created),
            node.id.hex == node.key ? .null : .text(node.id.hex), node.root.map { .text($0.hex) } ?? .null,
            node.commit.map { .text($0) } ?? .null,
        ]
        let n: Int64
        if let found = try lookup(node.key) {
            n = found.n
            try statement("UPDATE nodes SET kind=?, name=?, version=?, created=?, id=?, root=?, git_commit=? WHERE n=?").run(values + [.int(n)])
        } else {
            try statement("INSERT INTO nodes(kind, name, version, created, id, root, git_commit, key) VALUES(?,?,?,?,?,?,?,?)")
                .run(values + [.text(node.key)])
            n = db.lastInsertRowID
        }
        syncCache?.handles[node.key] = (n, true)
        changed = true
        delta?.handles.insert(n)
        let insertEdge = try statement("INSERT OR IGNORE INTO edges(parent, child, label) VALUES(?,?,?)")
        for e in edges {
            let edge = (try handle(e.parent), try handle(e.child), try label(e.role, e.split))
            try insertEdge.run([.int(edge.0), .int(edge.1), .int(edge.2)])
            if delta != nil, db.changes > 0 { delta?.edges.append(edge) }
        }
        let insertParam = try statement("INSERT OR REPLACE INTO params(run, key, value) VALUES(?,?,?)")
        for (k, v) in params { try insertParam.run([.text(node.key), .text(k), .text(v)]) }
        let insertMetric = try statement("INSERT OR REPLACE INTO metrics(run, key, value) VALUES(?,?,?)")
        for (k, v) in metrics { try insertMetric.run([.text(node.key), .text(k), v.isFinite ? .double(v) : .null]) }
    }

    func setVersion(_ key: String, version: Int) throws {
        try statement("UPDATE nodes SET version = ? WHERE key = ? AND kind IS NOT NULL AND (version IS NULL OR version != ?)")
            .run([.int(Int64(version)), .text(key), .int(Int64(version))])
        if db.changes > 0 {
            changed = true
            if delta != nil, let n = try lookup(key)?.n { delta?.handles.insert(n) }
        }
    }

    func hasTree(_ id: ObjectID) throws -> Bool {
        try !query("SELECT 1 FROM trees WHERE id = ?", [.text(id.hex)]) { _ in () }.isEmpty
    }

    func addTree(_ id: ObjectID, entries: [(name: String, child: ObjectID, isDirectory: Bool)]) throws {
        let insert = try statement("INSERT OR IGNORE INTO entries(tree, name, child, dir) VALUES(?,?,?,?)")
        for e in entries { try insert.run([.text(id.hex), .text(e.name), .text(e.child.hex), .int(e.isDirectory ? 1 : 0)]) }
        try statement("INSERT OR IGNORE INTO trees(id) VALUES(?)").run([.text(id.hex)])
    }

    // MARK: freshness

    /// The signature recorded for each ref directory at its last sync.
    func signatures() throws -> [String: String] {
        var out: [String: String] = [:]
        try statement("SELECT path, sig FROM dirs").forEachRow { out[$0.text(0) ?? ""] = $0.text(1) }
        return out
    }

    func setSignature(_ dir: String, _ sig: String) throws {
        try statement("INSERT OR REPLACE INTO dirs(path, sig) VALUES(?,?)").run([.text(dir), .text(sig)])
    }

    func runKeys() throws -> Set<String> {
        Set(try query("SELECT key FROM nodes WHERE kind = \(LineageKind.run.ordinal)", []) { $0.text(0) ?? "" })
    }

    /// Deletes every row (inside the caller's transaction), for a rebuild in place.
    func clear() throws {
        for t in ["nodes", "edges", "labels", "params", "metrics", "trees", "entries", "dirs", "snapshot", "snapshot_delta"] {
            try db.execute("DELETE FROM \(t)")
        }
        changed = true
        emptied = true
        whole = nil
    }

    /// How many rows each table holds, for `mlv reindex` (nodes: those whose object is indexed).
    func counts() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for t in ["nodes", "edges", "params", "metrics", "trees", "entries"] {
            let sql = t == "nodes" ? "SELECT count(*) FROM nodes WHERE kind IS NOT NULL" : "SELECT count(*) FROM \(t)"
            out[t] = Int(try query(sql, []) { $0.int(0) }.first ?? 0)
        }
        return out
    }
}

/// Edges by handle in compressed sparse rows: the edges of handle `h` are
/// `other[start[h]..<start[h + 1]]` with their labels, the far end in `other`.
struct Adjacency {
    var start: [Int32]
    var other: [Int32]
    var label: [Int32]
    /// Whether `other` holds children (down) or parents (up).
    var down: Bool

    /// Reads every (parent, child, label) row of `statement` into both directions.
    static func load(_ statement: SQLiteStatement, limit: Int) throws -> (up: Adjacency, down: Adjacency) {
        var parents: [Int32] = [], children: [Int32] = [], labels: [Int32] = []
        try statement.forEachRow { s in
            parents.append(Int32(truncatingIfNeeded: s.int(0)))
            children.append(Int32(truncatingIfNeeded: s.int(1)))
            labels.append(Int32(truncatingIfNeeded: s.int(2)))
        }
        func build(_ from: [Int32], _ to: [Int32], down: Bool) -> Adjacency {
            var start = [Int32](repeating: 0, count: limit + 1)
            for f in from where Int(f) < limit { start[Int(f) + 1] += 1 }
            for i in 0..<limit { start[i + 1] += start[i] }
            var fill = Array(start[0..<limit])
            var other = [Int32](repeating: 0, count: Int(start[limit]))
            var label = [Int32](repeating: 0, count: Int(start[limit]))
            for i in from.indices where Int(from[i]) < limit {
                let at = Int(fill[Int(from[i])])
                other[at] = to[i]
                label[at] = labels[i]
                fill[Int(from[i])] += 1
            }
            return Adjacency(start: start, other: other, label: label, down: down)
        }
        return (build(children, parents, down: false), build(parents, children, down: true))
    }

    /// The edges at `handles`, as (parent, child, label).
    func edges(of handles: [Int32]) -> [IntEdge] {
        var out: [IntEdge] = []
        for h in handles where Int(h) + 1 < start.count {
            for i in Int(start[Int(h)])..<Int(start[Int(h) + 1]) {
                out.append(down ? IntEdge(parent: h, child: other[i], label: label[i]) : IntEdge(parent: other[i], child: h, label: label[i]))
            }
        }
        return out
    }
}

/// What `mlv reindex` did.
public struct ReindexReport: Sendable {
    /// Rows per table: nodes, edges, params, metrics, trees, entries, events.
    public var counts: [String: Int]
    public var path: String
}

extension Repository {
    /// `.mlv/index.sqlite`.
    public var lineageIndexPath: String { storePath + "/index.sqlite" }

    /// The lineage facts to query: the index, first brought up to date with the refs
    /// (built when missing, rebuilt when unreadable); the manifests themselves when the
    /// index cannot be written at all.
    ///
    /// Only an index SQLite calls damaged (corrupt, not a database) is deleted: one that is
    /// merely busy (another process holding it past the busy timeout) or unwritable is
    /// left alone and this query walks the manifests, since deleting a file other
    /// processes have open is what makes an index go wrong (see `buildLineageIndex`).
    func lineage() throws -> LineageSource {
        do {
            return try openCaughtUpIndex()
        } catch let e as SQLiteError where e.isDamage {
            removeLineageIndex()
            if let index = try? openCaughtUpIndex() { return index }
        } catch {}
        return try scanLineage()
    }

    /// The lineage facts for upstream walks from `keys`. Everything upstream of a node
    /// was created before it, so when the index already holds every key it holds their
    /// whole upstream too (each sync adds every ref that existed when it listed the ref
    /// directories), and the per-query catch-up can be skipped.
    func lineage(upstreamOf keys: [String]) throws -> LineageSource {
        // One read transaction for all the lookups (a listing asks about some 50,000
        // versions; each lookup on its own would take and drop SQLite's file lock).
        if FS.exists(lineageIndexPath), let index = try? LineageIndex(path: lineageIndexPath),
           (try? index.reading({ try keys.allSatisfy({ try index.hasNode($0) }) })) == true {
            return index
        }
        return try lineage()
    }

    private func openCaughtUpIndex() throws -> LineageIndex {
        if !FS.exists(lineageIndexPath) { _ = try buildLineageIndex() }
        let index = try LineageIndex(path: lineageIndexPath)
        try catchUp(index)
        return index
    }

    /// Builds the whole index from every ref and manifest.
    ///
    /// An existing index is emptied and filled again in place, in one transaction, so
    /// SQLite's own locks order the rebuild with every other process using the index and
    /// readers see the old or the new contents. It is never replaced by rename: a process
    /// that had the old file open would go on writing to it, and its rollback journal
    /// (named after the path, not the file) would look hot to the next process opening the
    /// new file, which would roll the old file's pages into it.
    ///
    /// A missing (or damaged, hence deleted) index is built in a temporary file and linked
    /// into place, never over one that another process created meanwhile, so no reader
    /// ever opens a half-built index.
    /// `withEvents` also fills the registry's event tables (one search of every pack) and
    /// empties the model summaries.
    private func buildLineageIndex(withEvents: Bool = false) throws -> [String: Int] {
        if FS.exists(lineageIndexPath) {
            do {
                let index = try LineageIndex(path: lineageIndexPath)
                var counts = try index.db.transaction {
                    try index.clear()
                    try index.syncing { try sync(index) }
                    return try index.counts()
                }
                if withEvents {
                    // The event tables are emptied, then searched again in their own transaction;
                    // the model summaries are emptied, to be read afresh on the next listing.
                    let events = try EventIndex(db: index.db)
                    let summaries = try ModelSummaryIndex(db: index.db)
                    try index.db.transaction { try events.clear(); try summaries.clear() }
                    try catchUpEvents(events)
                    counts["events"] = try events.count()
                }
                return counts
            } catch let e as SQLiteError where e.isDamage {
                removeLineageIndex()
            }
        }
        // Unique per build, not just per process: two builds in one process (threads,
        // or tests sharing a store) must not delete each other's file mid-build.
        let tmp = FS.temporaryName(for: lineageIndexPath)
        defer { for suffix in ["", "-journal"] { try? FS.unlink(tmp + suffix) } }
        var counts: [String: Int]
        do {
            let index = try LineageIndex(path: tmp, fresh: true)
            try catchUp(index)
            counts = try index.counts()
            if withEvents {
                let events = try EventIndex(db: index.db)
                try catchUpEvents(events)
                counts["events"] = try events.count()
            }
        }
        // No journal beside the index is deleted here: once another process has linked its
        // build into place, a journal there is its live one, and deleting it fails that
        // process's commit ("disk I/O error", SQLITE_IOERR_DELETE_NOENT).
        if try !wrap({ try FS.link(tmp, lineageIndexPath) }) {
            // Another process built it first; its index is as good as this one.
            let index = try LineageIndex(path: lineageIndexPath)
            try catchUp(index)
            return try index.counts()
        }
        return counts
    }

    /// Builds the index again from every ref and manifest and replaces the old one.
    /// - Throws: `.damaged` when the index cannot be written (the cause named).
    @discardableResult
    public func reindex() throws -> ReindexReport {
        do {
            return ReindexReport(counts: try buildLineageIndex(withEvents: true), path: lineageIndexPath)
        } catch let e as SQLiteError {
            throw MLVError.damaged("cannot build the lineage index: \(e)")
        }
    }

    private func removeLineageIndex() {
        for suffix in ["", "-journal", "-wal", "-shm"] { try? FS.unlink(lineageIndexPath + suffix) }
    }

    /// After a write: brings an existing index up to date. The index is derived, so a
    /// failure here is left for the next query to repair (its ref signatures will differ).
    func updateLineageIndex() {
        guard FS.exists(lineageIndexPath), let index = try? LineageIndex(path: lineageIndexPath) else { return }
        try? catchUp(index)
    }

    /// Syncs every ref directory whose signature differs from the one recorded: new
    /// dataset and model names, new versions, new runs. One transaction.
    func catchUp(_ index: LineageIndex) throws {
        try index.db.transaction { try index.syncing { try sync(index) } }
    }

    /// `catchUp`'s work, inside the caller's transaction.
    private func sync(_ index: LineageIndex) throws {
        do {
            let refsRoot = refs.root
            let recorded = try index.signatures()
            func stale(_ dir: String, _ sig: String) -> Bool { sig == "racy" || recorded[dir] != sig }
            for kind in ArtifactKind.allCases {
                let top = kind.rawValue
                var names = Set(recorded.keys.filter { $0.hasPrefix(top + "/") }.map { String($0.split(separator: "/")[1]) })
                let topSig = directorySignature(refsRoot + "/" + top)
                if stale(top, topSig) { names.formUnion(try wrap { try refs.names(kind: top) }) }
                for name in names.sorted() {
                    let dir = "\(top)/\(name)/versions"
                    let sig = directorySignature(refsRoot + "/" + dir)
                    guard stale(dir, sig) else { continue }
                    try syncVersions(kind: kind, name: name, into: index)
                    try index.setSignature(dir, sig)
                }
                if stale(top, topSig) { try index.setSignature(top, topSig) }
            }
            let sig = directorySignature(refsRoot + "/runs")
            if stale("runs", sig) {
                let indexed = try index.runKeys()
                let missing = Set(try wrap { try refs.runIDs() }).subtracting(indexed)
                if !missing.isEmpty { try syncRuns(into: index, only: missing) }
                try index.setSignature("runs", sig)
            }
        }
    }

    /// mtime, inode and size of a directory ("-" when absent). A directory changed within
    /// the last 50 ms gets a signature that never matches, so it is synced again next
    /// time: a second change in the same clock tick would not move its mtime.
    func directorySignature(_ path: String) -> String {
        guard let st = try? FS.stat(path) else { return "-" }
        let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        if wallClockNanoseconds() - mtime < 50_000_000 { return "racy" }
        return "\(mtime)-\(st.st_ino)-\(st.st_size)"
    }
}
