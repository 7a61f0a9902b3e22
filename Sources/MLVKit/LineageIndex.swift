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
final class LineageIndex: LineageSource, LineageSink {
    /// Bumped whenever the tables change; an index with another number is rebuilt.
    static let schemaVersion = "1"
    let db: SQLiteDatabase
    private var statements: [String: SQLiteStatement] = [:]

    /// Opens or creates the index; an index of another schema version is emptied.
    /// - Throws: `SQLiteError` when the file cannot be opened or is not a database.
    /// - Parameter fresh: a new file being built whole (no rollback journal: a failed
    ///   build is discarded, never opened).
    init(path: String, fresh: Bool = false) throws {
        db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-32768")
        if fresh { try db.execute("PRAGMA journal_mode=OFF") }
        try db.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
        let version = try query("SELECT value FROM meta WHERE key='schema'", []) { $0.text(0) }.first ?? nil
        if version != Self.schemaVersion {
            try db.transaction {
                for t in ["nodes", "edges", "params", "metrics", "trees", "entries", "dirs"] { try db.execute("DROP TABLE IF EXISTS \(t)") }
                try db.execute("""
                    CREATE TABLE nodes(key TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, version INTEGER,
                                       id TEXT NOT NULL, created TEXT NOT NULL, root TEXT, git_commit TEXT) WITHOUT ROWID;
                    CREATE INDEX nodes_root ON nodes(root);
                    CREATE INDEX nodes_kind ON nodes(kind, name, version);
                    CREATE TABLE edges(child TEXT NOT NULL, parent TEXT NOT NULL, role TEXT NOT NULL, split TEXT NOT NULL,
                                       PRIMARY KEY(child, parent, role, split)) WITHOUT ROWID;
                    CREATE INDEX edges_parent ON edges(parent);
                    CREATE TABLE params(run TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(run, key)) WITHOUT ROWID;
                    CREATE TABLE metrics(run TEXT NOT NULL, key TEXT NOT NULL, value REAL, PRIMARY KEY(run, key)) WITHOUT ROWID;
                    CREATE TABLE trees(id TEXT PRIMARY KEY) WITHOUT ROWID;
                    CREATE TABLE entries(tree TEXT NOT NULL, name TEXT NOT NULL, child TEXT NOT NULL, dir INTEGER NOT NULL,
                                         PRIMARY KEY(tree, name)) WITHOUT ROWID;
                    CREATE INDEX entries_child ON entries(child);
                    CREATE TABLE dirs(path TEXT PRIMARY KEY, sig TEXT NOT NULL) WITHOUT ROWID;
                    INSERT OR REPLACE INTO meta(key, value) VALUES('schema', '\(Self.schemaVersion)');
                    """)
            }
        }
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

    /// Runs `sql` (with one `%@` where the `?` list goes) over `keys` in batches.
    private func batched<T>(_ sql: String, _ keys: [String], _ row: (SQLiteStatement) throws -> T) throws -> [T] {
        var out: [T] = []
        var start = 0
        while start < keys.count {
            let batch = Array(keys[start..<min(keys.count, start + 256)])
            start += batch.count
            let marks = Array(repeating: "?", count: batch.count).joined(separator: ",")
            let parts = sql.split(separator: "%@", omittingEmptySubsequences: false)
            out += try query(parts.joined(separator: marks), batch.map { .text($0) }, row)
        }
        return out
    }

    // MARK: LineageSource

    func nodes(_ keys: [String]) throws -> [String: LineageNode] {
        var out: [String: LineageNode] = [:]
        for n in try batched("SELECT key, kind, name, version, id, created, root, git_commit FROM nodes WHERE key IN (%@)", keys, Self.node) {
            if let n { out[n.key] = n }
        }
        return out
    }

    /// Reads the keys in batches bound as a numbered `VALUES` list, so each row says which
    /// key it answers and no key text is read back or hashed.
    func nodeList(_ keys: [String]) throws -> [LineageNode?] {
        var out = [LineageNode?](repeating: nil, count: keys.count)
        var start = 0
        while start < keys.count {
            let n = min(keys.count - start, 256)
            let values = (0..<n).map { "(\($0),?)" }.joined(separator: ",")
            let sql = "SELECT k.column1, n.kind, n.name, n.version, n.id, n.created, n.root, n.git_commit FROM (VALUES \(values)) k " +
                "JOIN nodes n ON n.key = k.column2"
            let base = start
            try statement(sql).forEachRow(keys[base..<base + n].map { .text($0) }) { s in
                let i = base + Int(s.int(0))
                out[i] = Self.node(s, key: keys[i])
            }
            start += n
        }
        return out
    }

    private static func node(_ s: SQLiteStatement) -> LineageNode? {
        guard let key = s.text(0) else { return nil }
        return node(s, key: key)
    }

    /// A node from a row whose columns 1...7 are kind, name, version, id, created, root, git_commit.
    private static func node(_ s: SQLiteStatement, key: String) -> LineageNode? {
        guard let kind = s.text(1).flatMap(LineageKind.init(rawValue:)), let name = s.text(2),
              let id = s.text(4).flatMap(ObjectID.init(hex:)), let created = s.text(5) else { return nil }
        return LineageNode(key: key, kind: kind, name: name, version: s.isNull(3) ? nil : Int(s.int(3)), id: id,
                           created: created, root: s.text(6).flatMap(ObjectID.init(hex:)), commit: s.text(7))
    }

    func edges(of keys: [String], _ direction: LineageDirection) throws -> [LineageEdge] {
        func edge(_ s: SQLiteStatement) -> LineageEdge {
            let split = s.text(3) ?? ""
            return LineageEdge(child: s.text(0) ?? "", parent: s.text(1) ?? "", role: s.text(2) ?? "", split: split.isEmpty ? nil : split)
        }
        let select = "SELECT child, parent, role, split FROM edges WHERE "
        switch direction {
        case .up: return try batched(select + "child IN (%@)", keys, edge)
        case .down: return try batched(select + "parent IN (%@)", keys, edge)
        case .both: return try batched(select + "child IN (%@)", keys, edge) + batched(select + "parent IN (%@)", keys, edge)
        }
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
        sql += " WHERE n.kind = 'code'"
        return try query(sql, parts.map { .text($0) }) { s in
            BlobHit(key: s.text(0) ?? "", path: path, blob: ObjectID(hex: s.text(1) ?? "")!)
        }
    }

    func runCommits() throws -> [(key: String, commit: String)] {
        try query("SELECT key, git_commit FROM nodes WHERE git_commit IS NOT NULL ORDER BY key", []) { ($0.text(0) ?? "", $0.text(1) ?? "") }
    }

    // MARK: LineageSink

    func hasNode(_ key: String) throws -> Bool {
        try !query("SELECT 1 FROM nodes WHERE key = ?", [.text(key)]) { _ in () }.isEmpty
    }

    func addNode(_ node: LineageNode, edges: [LineageEdge], params: [String: String], metrics: [String: Double]) throws {
        try statement("INSERT OR REPLACE INTO nodes(key, kind, name, version, id, created, root, git_commit) VALUES(?,?,?,?,?,?,?,?)").run([
            .text(node.key), .text(node.kind.rawValue), .text(node.name), node.version.map { .int(Int64($0)) } ?? .null,
            .text(node.id.hex), .text(node.created), node.root.map { .text($0.hex) } ?? .null, node.commit.map { .text($0) } ?? .null,
        ])
        let insertEdge = try statement("INSERT OR IGNORE INTO edges(child, parent, role, split) VALUES(?,?,?,?)")
        for e in edges { try insertEdge.run([.text(e.child), .text(e.parent), .text(e.role), .text(e.split ?? "")]) }
        let insertParam = try statement("INSERT OR REPLACE INTO params(run, key, value) VALUES(?,?,?)")
        for (k, v) in params { try insertParam.run([.text(node.key), .text(k), .text(v)]) }
        let insertMetric = try statement("INSERT OR REPLACE INTO metrics(run, key, value) VALUES(?,?,?)")
        for (k, v) in metrics { try insertMetric.run([.text(node.key), .text(k), v.isFinite ? .double(v) : .null]) }
    }

    func setVersion(_ key: String, version: Int) throws {
        try statement("UPDATE nodes SET version = ? WHERE key = ? AND (version IS NULL OR version != ?)")
            .run([.int(Int64(version)), .text(key), .int(Int64(version))])
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
        Set(try query("SELECT key FROM nodes WHERE kind = 'run'", []) { $0.text(0) ?? "" })
    }

    /// Deletes every row (inside the caller's transaction), for a rebuild in place.
    func clear() throws {
        for t in ["nodes", "edges", "params", "metrics", "trees", "entries", "dirs"] { try db.execute("DELETE FROM \(t)") }
    }

    /// How many rows each table holds, for `mlv reindex`.
    func counts() throws -> [String: Int] {
        var out: [String: Int] = [:]
        for t in ["nodes", "edges", "params", "metrics", "trees", "entries"] {
            out[t] = Int(try query("SELECT count(*) FROM \(t)", []) { $0.int(0) }.first ?? 0)
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
        if FS.exists(lineageIndexPath), let index = try? LineageIndex(path: lineageIndexPath),
           (try? keys.allSatisfy({ try index.hasNode($0) })) == true {
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
                    try sync(index)
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
        try index.db.transaction { try sync(index) }
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
