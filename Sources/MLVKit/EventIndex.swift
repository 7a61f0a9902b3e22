import MLVBasics
import MLVModel
import MLVStore

/// The registry's part of the derived index `.mlv/index.sqlite`: every model event stored
/// in the packs, on a chain or not (`events`: its chain, seq, id, time, previous id and,
/// since schema 3, its listing: every field `mlv audit` prints, see `Event.listingBytes`;
/// since schema 4, a covering index without the listings for `audit --at`),
/// and which packs were already searched for
/// them (`event_packs`), and per chain how many events there are, how many distinct
/// seqs, the highest seq and an event there (`event_chains`, kept as rows are added, so
/// `audit --at` reads 5,000 rows instead of grouping 200,000). Kept in tables of their own, beside the lineage tables, with
/// their own schema number (`meta` key `events-schema`), so the two evolve apart.
///
/// Filled in two ways: `appendEvent` adds the row of each event it writes (after the head
/// moves; a failure is ignored), and `Repository.catchUpEvents` reads every pack not yet
/// listed in `event_packs` (all of them on a fresh index, one per new event after that,
/// or the packs a fetch or a gc brought) and adds the events it finds. Packs are
/// immutable, so a pack searched once never needs searching again.
final class EventIndex {
    static let schemaVersion = "4"
    let db: SQLiteDatabase
    private var insert: SQLiteStatement?
    private var sameSeq: SQLiteStatement?
    private var countChain: SQLiteStatement?

    /// Opens the index file at `path` (creating it) and its event tables.
    /// - Throws: `SQLiteError`.
    convenience init(path: String) throws {
        let db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY; PRAGMA mmap_size=268435456")
        try self.init(db: db)
    }

    /// Uses the event tables of an open index, creating them (or emptying them when
    /// their schema number differs).
    /// - Throws: `SQLiteError`.
    init(db: SQLiteDatabase) throws {
        self.db = db
        try db.createTables(schemaKey: "events-schema", version: Self.schemaVersion, """
            DROP TABLE IF EXISTS events; DROP TABLE IF EXISTS event_packs; DROP TABLE IF EXISTS event_chains;
            CREATE TABLE events(chain TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, time INTEGER,
                                previous TEXT, listing BLOB NOT NULL, PRIMARY KEY(chain, seq, id)) WITHOUT ROWID;
            CREATE INDEX events_id ON events(id);
            CREATE INDEX events_time ON events(chain, seq, time, id);
            CREATE TABLE event_packs(name TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE event_chains(chain TEXT PRIMARY KEY, count INTEGER NOT NULL, seqs INTEGER NOT NULL,
                                      top INTEGER NOT NULL, top_id TEXT NOT NULL) WITHOUT ROWID;
            """)
    }

    /// Records one event (again is harmless) and, when it is new, counts it in its
    /// chain's `event_chains` row. Call it inside a transaction, so the two never disagree.
    /// - Throws: `SQLiteError`.
    func add(_ id: ObjectID, _ event: Event) throws {
        if insert == nil {
            insert = try db.prepare("INSERT OR IGNORE INTO events(chain, seq, id, time, previous, listing) VALUES(?,?,?,?,?,?)")
            sameSeq = try db.prepare("SELECT count(*) FROM events WHERE chain = ? AND seq = ?")
            // Every right-hand side reads the row as it was before this update.
            countChain = try db.prepare("""
                INSERT INTO event_chains(chain, count, seqs, top, top_id) VALUES(?1, 1, 1, ?2, ?3)
                ON CONFLICT(chain) DO UPDATE SET count = count + 1, seqs = seqs + ?4,
                    top_id = CASE WHEN ?2 > top THEN ?3 ELSE top_id END, top = max(top, ?2)
                """)
        }
        let chain = SQLiteValue.text(event.model), seq = SQLiteValue.int(Int64(event.seq)), hex = SQLiteValue.text(id.hex)
        try insert!.run([chain, seq, hex, Timestamp.parse(event.time).map { .int($0) } ?? .null,
                         event.previous.map { .text($0.hex) } ?? .null, .blob(event.listingBytes())])
        guard db.changes == 1 else { return }
        var same = 0
        try sameSeq!.forEachRow([chain, seq]) { same = Int($0.int(0)) }
        try countChain!.run([chain, seq, hex, .int(same == 1 ? 1 : 0)])
    }

    /// Forgets every indexed event and searched pack (for a rebuild).
    /// - Throws: `SQLiteError`.
    func clear() throws {
        try db.execute("DELETE FROM events; DELETE FROM event_packs; DELETE FROM event_chains")
    }

    /// How many events are indexed.
    /// - Throws: `SQLiteError`.
    func count() throws -> Int {
        var n = 0
        try db.prepare("SELECT count(*) FROM events").forEachRow { n = Int($0.int(0)) }
        return n
    }

    /// The packs already searched.
    func searchedPacks() throws -> Set<String> {
        var out = Set<String>()
        try db.prepare("SELECT name FROM event_packs").forEachRow { out.insert($0.text(0) ?? "") }
        return out
    }

    /// The indexed events of `chain` with a seq above `seq`, lowest first.
    func events(of chain: String, after seq: Int) throws -> [(seq: Int, id: ObjectID)] {
        var out: [(Int, ObjectID)] = []
        try db.prepare("SELECT seq, id FROM events WHERE chain = ? AND seq > ? ORDER BY seq").forEachRow([.text(chain), .int(Int64(seq))]) {
            if let id = $0.text(1).flatMap(ObjectID.init(hex:)) { out.append((Int($0.int(0)), id)) }
        }
        return out
    }

    /// Per chain: how many events, how many distinct seqs, the highest seq and the id of an
    /// event there (from `event_chains`).
    /// - Parameter only: just these chains (one query each); nil: every chain (one pass).
    /// - Throws: `SQLiteError`.
    func chainStats(only: [String]? = nil) throws -> [String: (count: Int, distinct: Int, top: Int, topID: ObjectID?)] {
        var out: [String: (count: Int, distinct: Int, top: Int, topID: ObjectID?)] = [:]
        let stats = try db.prepare("SELECT chain, count, seqs, top, top_id FROM event_chains \(only == nil ? "" : "WHERE chain = ?")")
        for key in Self.keys(only) {
            try stats.forEachRow(key) {
                out[$0.text(0) ?? ""] = (Int($0.int(1)), Int($0.int(2)), Int($0.int(3)), $0.text(4).flatMap(ObjectID.init(hex:)))
            }
        }
        return out
    }

    /// Per chain, the id of the newest event (highest seq) whose time is at most `time`;
    /// a chain with no such event is absent.
    /// - Parameter only: just these chains (one indexed query each); nil: every chain (one
    ///   pass over every event row).
    /// - Throws: `SQLiteError`.
    func newest(at time: Int64, only: [String]? = nil) throws -> [String: ObjectID] {
        var out: [String: ObjectID] = [:]
        // SQLite returns a bare column (`id`) from the row holding max(seq).
        let newest = try db.prepare("SELECT chain, max(seq), id FROM events WHERE time <= ? \(only == nil ? "" : "AND chain = ? ")GROUP BY chain")
        for key in Self.keys(only) {
            try newest.forEachRow([.int(time)] + key) { if let id = $0.text(2).flatMap(ObjectID.init(hex:)) { out[$0.text(0) ?? ""] = id } }
        }
        return out
    }

    /// The bindings for one query per chain of `only`, or one unbound query when nil.
    private static func keys(_ only: [String]?) -> [[SQLiteValue]] {
        only.map { $0.map { [.text($0)] } } ?? [[]]
    }
}

extension Repository {
    /// The registry's event index, brought up to date with the packs; nil when it cannot
    /// be opened or written (callers then read the packs themselves).
    func eventIndex() -> EventIndex? {
        if let index = try? EventIndex(path: lineageIndexPath), (try? catchUpEvents(index)) != nil { return index }
        return nil
    }

    /// Searches every pack not yet listed in `event_packs` for model events and records
    /// them; forgets packs that are gone (a gc replaced them). One transaction.
    func catchUpEvents(_ index: EventIndex) throws {
        try? objects.reload()
        let packs = objects.packIndexes
        let searched = try index.searchedPacks()
        let new = packs.filter { !searched.contains($0.name) }
        let present = Set(packs.map(\.name))
        let gone = searched.subtracting(present)
        guard !new.isEmpty || !gone.isEmpty else { return }
        try index.db.transaction {
            try forEachStoredEvent(in: new) { id, event in try index.add(id, event) }
            let insert = try index.db.prepare("INSERT OR IGNORE INTO event_packs(name) VALUES(?)")
            for p in new { try insert.run([.text(p.name)]) }
            let delete = try index.db.prepare("DELETE FROM event_packs WHERE name = ?")
            for name in gone { try delete.run([.text(name)]) }
        }
    }

    /// After `appendEvent` moved a head: records the event in an existing index. The
    /// index is derived, so a failure is left for the next catch-up (it finds the pack).
    func indexAppendedEvent(_ id: ObjectID, _ event: Event) {
        guard FS.exists(lineageIndexPath), let index = try? EventIndex(path: lineageIndexPath) else { return }
        try? index.db.transaction { try index.add(id, event) }
    }

    /// Calls `body` with each model event stored in `packs`, recognised from their bytes before anything is
    /// parsed: canonical JSON sorts keys, so an event's bytes begin with its first key,
    /// `action` (other manifests begin with `bytes` or `paths`); when `needles` is given,
    /// only records containing one of them are parsed. `skipping` ids are not read.
    func forEachStoredEvent(in packs: [PackIndex], skipping: Set<ObjectID> = [], needles: [[UInt8]]? = nil,
                            _ body: (ObjectID, Event) throws -> Void) rethrows {
        let prefix = Array("{\"action\":\"".utf8)
        for index in packs {
            for i in 0..<index.count {
                let entry = index.entry(at: i)
                guard entry.kind == .manifest, entry.rawLength < 1 << 20, !skipping.contains(entry.id),
                      let (_, bytes) = try? objects.readUnverified(entry.id), bytes.starts(with: prefix),
                      needles?.contains(where: { contains(bytes, $0) }) ?? true,
                      let json = try? JSON.parse(bytes), let e = try? Event(json: json) else { continue }
                try body(entry.id, e)
            }
        }
    }

    func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, haystack.count >= needle.count else { return false }
        var i = 0
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}

extension SQLiteDatabase {
    /// Runs `sql` (which drops and creates one group of tables) and records `version` under
    /// `schemaKey` in `meta`, unless `meta` already holds that version there. Asked again
    /// inside the transaction: another process may have just created them.
    /// - Throws: `SQLiteError`.
    func createTables(schemaKey: String, version: String, _ sql: String) throws {
        try execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID")
        func recorded() throws -> String? {
            var out: String?
            try prepare("SELECT value FROM meta WHERE key = ?").forEachRow([.text(schemaKey)]) { out = $0.text(0) }
            return out
        }
        guard try recorded() != version else { return }
        try transaction {
            guard try recorded() != version else { return }
            try execute(sql)
            try prepare("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)").run([.text(schemaKey), .text(version)])
        }
    }
}
