import MLVBasics
import MLVModel
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// One model's registry history as `mlv audit` lists it: every event, newest first, with
/// every field but the state (which the listing does not show). Kept as byte ranges of
/// one buffer (each event's id as 64 hex digits and its listing, `Event.listingBytes()`),
/// so 200,000 events make no `String`s; `forEach` hands out views of it. A trail read
/// from the index shares its reading worker's buffer, which is reused for the next chain
/// once the trail has been handed out (keeping the trail costs a copy then).
///
/// Served from the event index when the index holds the model's whole chain, read from
/// the event objects otherwise (`Repository.forEachAuditTrail`); both give equal trails.
public struct AuditTrail: Sendable, Equatable {
    public let model: String
    /// True when the events came from the event index, false when from the event objects.
    public let fromIndex: Bool
    /// Per event, newest first: where its id and listing lie in `records`.
    var entries: [Entry] = []
    var records: [UInt8] = []

    struct Entry: Equatable {
        var seq: Int
        var id: Int
        var listing: Range<Int>
    }

    /// How many events.
    public var count: Int { entries.count }

    init(model: String, fromIndex: Bool, entries: [Entry] = [], records: [UInt8] = []) {
        self.model = model
        self.fromIndex = fromIndex
        self.entries = entries
        self.records = records
    }

    /// The trail of `events` (newest first, as `Repository.history` returns them).
    public init(model: String, events: [(id: ObjectID, event: Event)]) {
        self.init(model: model, fromIndex: false)
        for (id, e) in events {
            let at = records.count
            id.appendHex(to: &records)
            records += e.listingBytes()
            entries.append(Entry(seq: e.seq, id: at, listing: at + 64..<records.count))
        }
    }

    /// Calls `body` with each event, newest first. The view's bytes are valid only during the call.
    /// - Throws: what `body` throws, or `MLVError.damaged` for a listing that does not decode
    ///   (never for a trail `Repository.forEachAuditTrail` handed out: it checks them).
    public func forEach(_ body: (AuditEvent) throws -> Void) throws {
        try records.withUnsafeBytes { raw in
            for e in entries {
                guard let view = AuditEvent(seq: e.seq, idHex: UnsafeRawBufferPointer(rebasing: raw[e.id..<e.id + 64]),
                                            listing: UnsafeRawBufferPointer(rebasing: raw[e.listing])) else {
                    throw MLVError.damaged("event #\(e.seq) of model '\(model)': its listing in the event index does not decode")
                }
                try body(view)
            }
        }
    }

    /// Equal events (seq, id and listing each), wherever they were read from.
    public static func == (a: AuditTrail, b: AuditTrail) -> Bool {
        a.model == b.model && a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { x, y in
            x.seq == y.seq && a.records[x.id..<x.id + 64] == b.records[y.id..<y.id + 64] && a.records[x.listing] == b.records[y.listing]
        }
    }
}

/// One event of an `AuditTrail`: the fields `mlv audit` prints, as UTF-8 bytes that are
/// valid only inside the `forEach` call that handed the view out.
public struct AuditEvent {
    public let seq: Int
    /// The event's id as 64 lowercase hex digits.
    public let idHex: UnsafeRawBufferPointer
    public let actor: UnsafeRawBufferPointer
    /// As stored in the event (RFC 3339 UTC), not reformatted.
    public let time: UnsafeRawBufferPointer
    public let action: Event.Action
    public let version: Int
    public let stage: UnsafeRawBufferPointer?
    public let alias: UnsafeRawBufferPointer?
    public let message: UnsafeRawBufferPointer
    public let forced: Bool
    public let reason: UnsafeRawBufferPointer?
    /// How many approvals the event carries (see `forEachApproval`).
    public let approvalCount: Int
    private let approvals: UnsafeRawBufferPointer

    /// One approval of the event: its version, stage, actor, time and message.
    public struct Approval {
        public let version: Int
        public let stage: UnsafeRawBufferPointer
        public let actor: UnsafeRawBufferPointer
        public let time: UnsafeRawBufferPointer
        public let message: UnsafeRawBufferPointer
    }

    /// Decodes a listing; nil when it does not decode.
    init?(seq: Int, idHex: UnsafeRawBufferPointer, listing: UnsafeRawBufferPointer) {
        self.seq = seq
        self.idHex = idHex
        var r = CompactReader(listing)
        func text() throws -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: r.base[try r.stringRange()]) }
        do {
            guard try r.byte() == Event.listingVersion else { return nil }
            actor = try text()
            time = try text()
            let code = Int(try r.byte())
            guard code < Event.listingActions.count else { return nil }
            action = Event.listingActions[code]
            version = try r.int()
            let flags = try r.byte()
            guard flags < 16 else { return nil }
            stage = flags & 1 != 0 ? try text() : nil
            alias = flags & 2 != 0 ? try text() : nil
            forced = flags & 4 != 0
            reason = flags & 8 != 0 ? try text() : nil
            message = try text()
            approvalCount = try r.int()
            let start = r.at
            for _ in 0..<approvalCount {
                _ = try r.int()
                for _ in 0..<4 { _ = try r.stringRange() }
            }
            guard r.isAtEnd else { return nil }
            approvals = UnsafeRawBufferPointer(rebasing: r.base[start...])
        } catch {
            return nil
        }
    }

    /// Calls `body` with each approval, in the event's order.
    public func forEachApproval(_ body: (Approval) throws -> Void) rethrows {
        var r = CompactReader(approvals)
        func text() -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: r.base[(try? r.stringRange()) ?? 0..<0]) }
        for _ in 0..<approvalCount {
            // Checked when the view was made, so no read fails here.
            let version = (try? r.int()) ?? 0
            try body(Approval(version: version, stage: text(), actor: text(), time: text(), message: text()))
        }
    }
}

extension Event {
    static let listingVersion: UInt8 = 1
    static let listingActions: [Action] = [.approve, .promote, .aliasSet, .aliasRemove]

    /// The event's fields as `mlv audit` lists them, for the event index (schema 3): a
    /// version byte, actor, time, the action (a byte: its place in `listingActions`),
    /// version, a flags byte (1 stage, 2 alias, 4 forced, 8 reason), the stage, alias and
    /// reason that are present, the message, and the approvals (a count, then each one's
    /// version, stage, actor, time and message). See `CompactWriter`.
    func listingBytes() -> [UInt8] {
        var out = CompactWriter()
        out.byte(Self.listingVersion)
        out.string(actor)
        out.string(time)
        out.byte(UInt8(Self.listingActions.firstIndex(of: action)!))
        out.int(version)
        out.byte((stage == nil ? 0 : 1) | (alias == nil ? 0 : 2) | (forced ? 4 : 0) | (reason == nil ? 0 : 8))
        for s in [stage, alias, reason] { if let s { out.string(s) } }
        out.string(message)
        out.int(approvals.count)
        for a in approvals { out.int(a.version); out.string(a.stage); out.string(a.actor); out.string(a.time); out.string(a.message) }
        return out.bytes
    }
}

extension Repository {
    /// Each model's registry history, newest first, in the order of `models`: what
    /// `history(model:)` reads, without the states (see `forEachAuditTrail`).
    /// - Returns: per model its trail, or the error `history(model:)` throws for it.
    public func auditTrails(models: [String]) -> [Result<AuditTrail, Error>] {
        let results = Locked([Result<AuditTrail, Error>?](repeating: nil, count: models.count))
        forEachAuditTrail(models: models) { _, i, r in results.withLock { $0[i] = r } }
        return results.withLock { $0.map { $0! } }
    }

    /// Calls `body(worker, position, trail)` once for each model of `models` with its
    /// registry history, newest first: what `history(model:)` reads, without the states.
    /// For a model whose head (from `modelSummaries`, checked against its head file) is in
    /// the event index, the trail follows `previous` through the index rows from the head
    /// down to seq 1, each row one seq below the last, each listing decoding; any model
    /// where that fails (a row missing, a link or seq out of place, an undecodable
    /// listing), or every model when the index cannot be used, is read from its event
    /// objects as `history` does, and gets the error `history` throws (`.notFound` for a
    /// name with no versions, a damaged or missing event).
    ///
    /// `body` runs on 2 workers at once (`worker` is 0 or 1; each worker's calls come one
    /// after another) in no particular order of models. A trail from the index shares a
    /// buffer that is reused once `body` returns, so keeping it costs a copy.
    public func forEachAuditTrail(models: [String], _ body: (_ worker: Int, _ position: Int, _ trail: Result<AuditTrail, Error>) -> Void) {
        let served = Locked(Set<Int>())
        if let summaries = try? modelSummaries(models, states: false), let index = eventIndex() {
            var heads: [String: (position: Int, head: ObjectID, seq: Int)] = [:]
            for (i, s) in summaries.enumerated() {
                guard let s else { continue }  // no versions: `history` says so
                guard let head = s.summary.head else {
                    served.withLock { _ = $0.insert(i) }
                    body(0, i, .success(AuditTrail(model: models[i], fromIndex: true)))
                    continue
                }
                if let seq = s.headSeq { heads[models[i]] = (i, head, seq) }
            }
            // A failure part way leaves the chains not yet served to the walk below.
            try? index.forEachTrail(heads.mapValues { ($0.head, $0.seq) }, path: lineageIndexPath) { worker, name, trail in
                let i = heads[name]!.position
                served.withLock { _ = $0.insert(i) }
                body(worker, i, .success(trail))
            }
        }
        let done = served.withLock { $0 }
        let missing = models.indices.filter { !done.contains($0) }
        let next = AtomicCounter()
        Parallel.workers(min(2, missing.count)) { worker in
            while true {
                let k = next.add(1) - 1
                if k >= missing.count { return }
                let i = missing[k]
                body(worker, i, Result { AuditTrail(model: models[i], events: try history(model: models[i])) })
            }
        }
    }
}

extension EventIndex {
    /// Calls `body(worker, chain, trail)` for each chain of `heads` (chain -> its head id
    /// and seq) that the index holds whole (see `Repository.forEachAuditTrail`). Few chains
    /// are read by one query each (worker 0); many by two passes over every row, on 2
    /// workers (the second on its own connection to the file at `path`), split at a chain
    /// name.
    /// - Throws: `SQLiteError`, after the chains read before it were handed to `body`.
    func forEachTrail(_ heads: [String: (head: ObjectID, seq: Int)], path: String,
                      _ body: (_ worker: Int, _ chain: String, _ trail: AuditTrail) -> Void) throws {
        let select = "SELECT chain, seq, id, previous, listing FROM events"
        if heads.count <= 64 {
            var walk = ChainWalk()
            let one = try db.prepare(select + " WHERE chain = ? ORDER BY seq")
            for (name, head) in heads {
                walk.startChain(name, head: head.head, seq: head.seq)
                try one.forEachRow([.text(name)]) { walk.add($0) }
                walk.finishChain { body(0, name, $0) }
            }
            return
        }
        // Split where half the chains lie on each side, by bytes (SQLite's order).
        let names = heads.keys.map { Array($0.utf8) }.sorted { $0.lexicographicallyPrecedes($1) }
        let split = String(decoding: names[names.count / 2], as: UTF8.self)
        let failure = Locked<Error?>(nil)
        Parallel.workers(2) { part in
            do {
                let database = part == 0 ? db : try SQLiteDatabase(path: path, busyTimeoutMilliseconds: 250)
                if part == 1 { try database.execute("PRAGMA mmap_size=268435456") }
                let query = try database.prepare(select + (part == 0 ? " WHERE chain < ?" : " WHERE chain >= ?") + " ORDER BY chain, seq")
                var walk = ChainWalk()
                var chain: [UInt8] = []
                func finish() { walk.finishChain { body(part, $0.model, $0) } }
                try query.forEachRow([.text(split)]) { row in
                    let name = row.rawBytes(0)
                    if name.count != chain.count || memcmp(name.baseAddress!, chain, name.count) != 0 {
                        finish()
                        chain = Array(name)
                        let s = String(decoding: chain, as: UTF8.self)
                        if let h = heads[s] { walk.startChain(s, head: h.head, seq: h.seq) }
                    }
                    walk.add(row)
                }
                finish()
            } catch {
                failure.withLock { $0 = $0 ?? error }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }
}

/// The index rows of one chain at a time, in seq order, in one buffer reused from chain
/// to chain; at the end of a chain it is walked from the head down.
struct ChainWalk {
    var bytes: [UInt8] = []
    /// The current chain's rows: seq and where id, previous (nil: none) and listing lie in `bytes`.
    var rows: [(seq: Int, id: Int, previous: Int?, listing: Range<Int>)] = []
    var current: (name: String, head: ObjectID, seq: Int)?

    mutating func startChain(_ name: String, head: ObjectID, seq: Int) {
        current = (name, head, seq)
        rows.removeAll(keepingCapacity: true)
        bytes.removeAll(keepingCapacity: true)
    }

    /// Adds a row of the current chain (ignored when no chain is wanted).
    mutating func add(_ row: SQLiteStatement) {
        guard current != nil else { return }
        // A NULL previous (seq 1) reads as no bytes; any other length is a malformed row,
        // which is skipped, so the walk does not find it.
        let id = row.rawBytes(2), previous = row.rawBytes(3), listing = row.rawBytes(4)
        guard id.count == 64, previous.count == 64 || previous.isEmpty else { return }
        let at = bytes.count
        bytes += id
        bytes += previous
        let start = bytes.count
        bytes += listing
        rows.append((Int(row.int(1)), at, previous.isEmpty ? nil : at + 64, start..<bytes.count))
    }

    /// Walks the current chain from its head (seq `seq`) down to seq 1 by `previous` and
    /// hands its trail to `body`, unless a link is missing, seqs are not one apart, it does
    /// not end at seq 1 with no previous, or a listing does not decode.
    mutating func finishChain(_ body: (AuditTrail) -> Void) {
        guard let (name, head, seq) = current else { return }
        current = nil
        var headHex: [UInt8] = []
        head.appendHex(to: &headHex)
        var entries: [AuditTrail.Entry] = []
        entries.reserveCapacity(seq)
        let ok: Bool = bytes.withUnsafeBytes { raw in
            // The id the next row must have: the head's, then the previous named by the row above.
            var expected: Int?
            func isExpected(_ at: Int) -> Bool {
                if let e = expected { return memcmp(raw.baseAddress! + at, raw.baseAddress! + e, 64) == 0 }
                return memcmp(raw.baseAddress! + at, headHex, 64) == 0
            }
            var s = seq
            // Rows are in seq order: usually one per seq, so seq s is at s - 1. Start from
            // the last row of seq s and look back over every row of that seq.
            var at = min(max(0, s - 1), rows.count - 1)
            while s >= 1 {
                while at + 1 < rows.count && rows[at + 1].seq <= s { at += 1 }
                while at >= 0 && rows[at].seq > s { at -= 1 }
                var k = at
                while k >= 0 && rows[k].seq == s && !isExpected(rows[k].id) { k -= 1 }
                guard k >= 0, rows[k].seq == s, (rows[k].previous == nil) == (s == 1) else { return false }
                let r = rows[k]
                guard AuditEvent(seq: s, idHex: UnsafeRawBufferPointer(rebasing: raw[r.id..<r.id + 64]),
                                 listing: UnsafeRawBufferPointer(rebasing: raw[r.listing])) != nil else { return false }
                entries.append(AuditTrail.Entry(seq: s, id: r.id, listing: r.listing))
                expected = r.previous
                s -= 1
                at = k - 1
            }
            return true
        }
        if ok { body(AuditTrail(model: name, fromIndex: true, entries: entries, records: bytes)) }
    }
}
