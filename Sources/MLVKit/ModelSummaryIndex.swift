import MLVBasics
import MLVModel
import MLVStore

/// The registry's per-model summaries in the derived index `.mlv/index.sqlite`
/// (`model_summaries`, schema number `summaries-schema` in `meta`): for each model, what
/// `mlv models`, `mlv registry` and `mlv audit --at` need from its refs and head event
/// (latest version and its id, how many versions, the head event's id, seq, time and state),
/// with what they were read from, so a listing reads no event when nothing changed.
///
/// A row is served only when it still matches the truth, checked per model on every
/// read (see `Repository.modelSummaries`):
///
/// - `head_ref` holds the exact bytes of `refs/model/NAME/head` the row was made from
///   (empty: no head), `head` the id they hold. The head file is read and compared byte
///   for byte, so any move of the head (a promotion by another process, a hand edit in
///   place, a rollback) makes the row stale. The state is the head event's, and events are content-addressed, so
///   the same head bytes mean the same state.
/// - `versions_sig` is the signature (mtime, inode, size) of `refs/model/NAME/versions`
///   taken before the versions were listed. Version refs are created (link) or replaced
///   (rename) in that directory, never rewritten in place, so every change to the set of
///   versions or to what one points at moves the directory's mtime. A directory changed
///   in the last 50 ms gets no row (see `directorySignature`).
///
/// Rows that fail to decode are stale too. Deleting the index loses nothing: every row
/// is read again from the refs and head events.
final class ModelSummaryIndex {
    static let schemaVersion = "2"
    let db: SQLiteDatabase

    /// One stored summary, its state still encoded (decoded only once it is known valid).
    struct Row {
        var headRef: [UInt8]
        /// The id `headRef` holds (nil when empty).
        var head: ObjectID?
        var versionsSig: String
        var latest: Int
        var latestID: ObjectID
        var count: Int
        /// The head event's seq, when that event names this model.
        var headSeq: Int?
        /// The head event's time (seconds since the epoch), when that event names this
        /// model and its time parses.
        var headTime: Int64?
        var state: [UInt8]
    }

    /// Uses the summary table of an open index, creating it (or emptying it when its
    /// schema number differs).
    /// - Throws: `SQLiteError`.
    init(db: SQLiteDatabase) throws {
        self.db = db
        try db.createTables(schemaKey: "summaries-schema", version: Self.schemaVersion, """
            DROP TABLE IF EXISTS model_summaries;
            CREATE TABLE model_summaries(name TEXT PRIMARY KEY, head_ref BLOB NOT NULL, head BLOB, versions_sig TEXT NOT NULL,
                                         latest INTEGER NOT NULL, latest_id BLOB NOT NULL, count INTEGER NOT NULL,
                                         head_seq INTEGER, head_time INTEGER, state BLOB NOT NULL) WITHOUT ROWID;
            """)
    }

    /// Opens the index file at `path` (creating it) and its summary table. Waits at most
    /// 250 ms for another process's lock: a listing that cannot use the index reads the
    /// refs instead, which is faster than waiting out a long write.
    /// - Throws: `SQLiteError`.
    convenience init(path: String) throws {
        let db = try SQLiteDatabase(path: path, busyTimeoutMilliseconds: 250)
        try db.execute("PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY; PRAGMA mmap_size=268435456")
        try self.init(db: db)
    }

    /// Every stored row by model name (the `only` ones when given).
    /// - Throws: `SQLiteError`.
    func rows(only: [String]? = nil) throws -> [String: Row] {
        var out: [String: Row] = [:]
        let select = "SELECT name, head_ref, versions_sig, latest, latest_id, count, head_seq, state, head, head_time FROM model_summaries"
        func row(_ s: SQLiteStatement) {
            let id = s.blob(4), head = s.blob(8)
            guard let name = s.text(0), let sig = s.text(2), id.count == ObjectID.byteCount,
                  head.isEmpty || head.count == ObjectID.byteCount else { return }
            out[name] = Row(headRef: s.blob(1), head: head.isEmpty ? nil : head.withUnsafeBytes { ObjectID(bytes: $0) },
                            versionsSig: sig, latest: Int(s.int(3)), latestID: id.withUnsafeBytes { ObjectID(bytes: $0) }, count: Int(s.int(5)),
                            headSeq: s.isNull(6) ? nil : Int(s.int(6)), headTime: s.isNull(9) ? nil : s.int(9), state: s.blob(7))
        }
        if let only {
            let one = try db.prepare(select + " WHERE name = ?")
            for name in only { try one.forEachRow([.text(name)], row) }
        } else {
            try db.prepare(select).forEachRow([], row)
        }
        return out
    }

    /// Replaces the rows of `changed` and deletes those of `removed`, in one transaction.
    /// - Throws: `SQLiteError`.
    func store(_ changed: [(name: String, row: Row)], removing removed: [String]) throws {
        guard !changed.isEmpty || !removed.isEmpty else { return }
        try db.transaction {
            let insert = try db.prepare("""
                INSERT OR REPLACE INTO model_summaries(name, head_ref, head, versions_sig, latest, latest_id, count, head_seq,
                                                       head_time, state)
                VALUES(?,?,?,?,?,?,?,?,?,?)
                """)
            for (name, r) in changed {
                try insert.run([.text(name), .blob(r.headRef), r.head.map { .blob($0.bytes) } ?? .null, .text(r.versionsSig),
                                .int(Int64(r.latest)), .blob(r.latestID.bytes), .int(Int64(r.count)),
                                r.headSeq.map { .int(Int64($0)) } ?? .null, r.headTime.map { .int($0) } ?? .null, .blob(r.state)])
            }
            let delete = try db.prepare("DELETE FROM model_summaries WHERE name = ?")
            for name in removed { try delete.run([.text(name)]) }
        }
    }

    /// Deletes every row (`mlv reindex`).
    /// - Throws: `SQLiteError`.
    func clear() throws {
        try db.execute("DELETE FROM model_summaries")
    }

    /// How many rows are stored.
    /// - Throws: `SQLiteError`.
    func count() throws -> Int {
        var n = 0
        try db.prepare("SELECT count(*) FROM model_summaries").forEachRow { n = Int($0.int(0)) }
        return n
    }
}

/// A model's summary with the head event's seq and time (nil when there is no head, or
/// its event names another model), which `registryStates` uses to trust the event index
/// and to answer from the head without asking it.
struct CheckedSummary {
    var summary: ModelSummary
    var headSeq: Int?
    var headTime: Int64?
    /// The stored state, still encoded, when `modelSummaries` was asked not to decode it
    /// (`summary.state` is then empty).
    var encodedState: [UInt8]? = nil

    /// The head event's state, decoded now if it was left encoded; nil when it does not decode.
    func headState() -> RegistryState? {
        encodedState.map { RegistryState(compact: $0) } ?? summary.state
    }
}

extension Repository {
    /// The summaries of `names` (nil for a name with no versions), in their order, each
    /// served from the summary index when its row still matches the model's head file and
    /// versions directory, and read from the refs and the head event otherwise (then
    /// stored for next time). Without a usable index every model is read.
    /// - Parameter pruning: `names` is every model, so rows of other names are deleted.
    /// - Parameter states: false leaves a stored row's state encoded (`headState()` decodes
    ///   it; `summary.state` is empty), for callers that mostly need only the head.
    func modelSummaries(_ names: [String], pruning: Bool = false, states: Bool = true) throws -> [CheckedSummary?] {
        let index = try? ModelSummaryIndex(path: lineageIndexPath)
        let rows = (try? index?.rows(only: names.count <= 64 ? names : nil)) ?? [:]
        let results = try Parallel.map(Array(names.indices), batch: 32) { i -> (CheckedSummary?, ModelSummaryIndex.Row?) in
            let name = names[i]
            let dir = refs.root + "/\(Self.modelKind)/\(name)"
            let headRef = try wrap { try FS.readSmallFile(dir + "/head", limit: 256) } ?? []
            let sig = directorySignature(dir + "/versions")
            if let row = rows[name], row.headRef == headRef, (row.head == nil) == headRef.isEmpty,
               row.versionsSig == sig, sig != "racy",
               let state = states ? RegistryState(compact: row.state) : RegistryState() {
                let summary = ModelSummary(name: name, latest: row.latest, latestID: row.latestID, manifest: nil,
                                           versions: row.count, state: state, head: row.head)
                return (CheckedSummary(summary: summary, headSeq: row.headSeq, headTime: row.headTime,
                                       encodedState: states ? nil : row.state), nil)
            }
            guard let last = try wrap({ try refs.latestVersion(kind: Self.modelKind, name: name) }) else { return (nil, nil) }
            var head: RegistryHead?
            if !headRef.isEmpty {
                let id = try wrap { try RefStore.parseRef(headRef, path: dir + "/head") }
                head = RegistryHead(id: id, event: try event(id))
            }
            let state = head?.event.state ?? RegistryState()
            let headSeq = head.flatMap { $0.event.model == name ? $0.event.seq : nil }
            let headTime = head.flatMap { $0.event.model == name ? Timestamp.parse($0.event.time) : nil }
            let summary = ModelSummary(name: name, latest: last.number, latestID: last.id, manifest: nil, versions: last.count,
                                       state: state, head: head?.id)
            let row = sig == "racy" ? nil : ModelSummaryIndex.Row(headRef: headRef, head: head?.id, versionsSig: sig, latest: last.number,
                                                                  latestID: last.id, count: last.count, headSeq: headSeq,
                                                                  headTime: headTime, state: state.compactBytes())
            return (CheckedSummary(summary: summary, headSeq: headSeq, headTime: headTime), row)
        }
        if let index {
            let changed = zip(names, results).compactMap { name, r in r.1.map { (name: name, row: $0) } }
            let removed = pruning ? Set(rows.keys).subtracting(names).sorted() : []
            try? index.store(changed, removing: removed)
        }
        return results.map(\.0)
    }
}

// MARK: the summary's state encoding

/// `RegistryState` in the summary index: a version byte, then stages (name, holders),
/// aliases (name, holder) and pending approvals, each list led by its length; integers
/// as LEB128, strings as a length and UTF-8, ids as 32 raw bytes. Decoding it makes no
/// JSON values and parses no hex.
extension RegistryState {
    static let compactVersion: UInt8 = 1

    func compactBytes() -> [UInt8] {
        var out = CompactWriter()
        out.byte(Self.compactVersion)
        func holder(_ h: Holder) { out.int(h.version); out.id(h.id); out.string(h.since); out.string(h.by) }
        out.int(stages.count)
        for (name, holders) in stages.sorted(by: { $0.key < $1.key }) {
            out.string(name); out.int(holders.count); holders.forEach(holder)
        }
        out.int(aliases.count)
        for (name, h) in aliases.sorted(by: { $0.key < $1.key }) { out.string(name); holder(h) }
        out.int(pending.count)
        for a in pending { out.int(a.version); out.string(a.stage); out.string(a.actor); out.string(a.time); out.string(a.message) }
        return out.bytes
    }

    /// Decodes `compactBytes()`; nil when the bytes are not such an encoding.
    init?(compact bytes: [UInt8]) {
        let decoded: RegistryState? = bytes.withUnsafeBytes { raw in
            var r = CompactReader(raw)
            func holder() throws -> Holder { Holder(version: try r.int(), id: try r.id(), since: try r.string(), by: try r.string()) }
            do {
                guard try r.byte() == Self.compactVersion else { return nil }
                var stages: [String: [Holder]] = [:]
                for _ in 0..<(try r.int()) {
                    let name = try r.string()
                    stages[name] = try (0..<(try r.int())).map { _ in try holder() }
                }
                var aliases: [String: Holder] = [:]
                for _ in 0..<(try r.int()) { aliases[try r.string()] = try holder() }
                let pending = try (0..<(try r.int())).map { _ in
                    Approval(version: try r.int(), stage: try r.string(), actor: try r.string(), time: try r.string(),
                             message: try r.string())
                }
                guard r.isAtEnd else { return nil }
                return RegistryState(stages: stages, aliases: aliases, pending: pending)
            } catch {
                return nil
            }
        }
        guard let decoded else { return nil }
        self = decoded
    }
}
