import MLVBasics
import MLVModel
import MLVStore

extension Repository {
    /// Re-checks `model`'s event chain; see `verifyChains`.
    /// - Throws: `.notFound` for an unknown model.
    public func verifyChain(model: String, full: Bool = false) throws -> ChainReport {
        try verifyChains(models: [model], full: full)[0]
    }

    /// Re-checks each model's event chain from the head back: every event's bytes hash to
    /// its id (the pack read re-hashes), decode as an event of this model, `seq` falls by
    /// one at each step to 1 with no previous, and times never run backwards. Then looks
    /// for events of these models newer than their head (`seq` beyond the head's), which
    /// mean a head was moved back: in the derived event index (`EventIndex`, brought up to
    /// date with the packs first), or, with `full` or when the index cannot be used, in one
    /// pass over every stored object outside the chains. Names the first bad event found
    /// (for a head moved back, the lowest seq beyond it). Then compares the event index's
    /// row of every event on an intact chain with the event itself (its listing and
    /// previous id): plain `mlv audit` shows those rows, so a row edited or gone stale is
    /// reported too (`mlv reindex` rebuilds them).
    /// - Throws: `.notFound` for an unknown model.
    public func verifyChains(models: [String], full: Bool = false) throws -> [ChainReport] {
        var reports: [ChainReport] = []
        var chained = Set<ObjectID>()
        var headSeqs: [String: (index: Int, seq: Int)] = [:]
        // The walks run on 2 threads, 16 models at a time; each re-hashes its own events.
        typealias Listed = [ObjectID: (seq: Int, previous: ObjectID?, listing: [UInt8])]
        let walks = try Parallel.map(models, batch: 16) { model -> (report: ChainReport, seq: Int, ids: Set<ObjectID>, listed: Listed) in
            try requireModel(model)
            var report = ChainReport(model: model, events: 0, problem: nil)
            var ids = Set<ObjectID>()
            var listed: Listed = [:]
            let seq = walkChain(Event.self, chain: model, head: "\(Self.modelKind)/\(model)/head", &report, &ids) { id, e in
                listed[id] = (e.seq, e.previous, e.listingBytes())
            }
            return (report, seq, ids, listed)
        }
        for (model, walk) in zip(models, walks) {
            if walk.report.isIntact { headSeqs[model] = (reports.count, walk.seq) }
            reports.append(walk.report)
            chained.formUnion(walk.ids)
        }
        guard !headSeqs.isEmpty else { return reports }
        let index = eventIndex()
        // What plain `audit` would show from the index, checked against the events.
        func checkIndexRows(_ reports: inout [ChainReport]) {
            guard let index, let rows = try? index.db.prepare("SELECT id, previous, listing FROM events WHERE chain = ?") else { return }
            for (model, walk) in zip(models, walks) {
                guard let at = headSeqs[model]?.index, reports[at].isIntact else { continue }
                var problem: (seq: Int, text: String)?
                try? rows.forEachRow([.text(model)]) { row in
                    guard let id = row.text(0).flatMap(ObjectID.init(hex:)), let e = walk.listed[id] else { return }
                    let previousMatches = row.text(1).flatMap(ObjectID.init(hex:)) == e.previous
                        && (row.text(1) == nil) == (e.previous == nil)
                    guard !previousMatches || row.blob(2) != e.listing else { return }
                    if problem == nil || e.seq < problem!.seq {
                        problem = (e.seq, "the event index's row for event seq \(e.seq) (\(id.hex)) differs from the stored event, and plain 'mlv audit' shows the row: the index was edited or is stale; 'mlv reindex' rebuilds it")
                    }
                }
                if let problem { reports[at].problem = problem.text }
            }
        }
        func rolledBack(_ seq: Int, _ id: ObjectID, head: Int) -> String {
            "event seq \(seq) (\(id.hex)) is newer than the head (seq \(head)): the head was moved back, or a change crashed before moving it"
        }
        if !full, let index {
            var found: [Int: String] = [:]
            do {
                for (model, head) in headSeqs {
                    if let e = try index.events(of: model, after: head.seq).first(where: { !chained.contains($0.id) }) {
                        found[head.index] = rolledBack(e.seq, e.id, head: head.seq)
                    }
                }
                for (i, problem) in found { reports[i].problem = problem }
                checkIndexRows(&reports)
                return reports
            } catch {}  // an unreadable index: search the packs instead
        }
        // The full search: events of these models beyond the head's seq anywhere in the
        // packs. Events name the model just after `message`, checked on the bytes first.
        let needles = models.count <= 16 ? models.map { Array("\",\"model\":\"\($0)\",\"previous\":".utf8) } : nil
        var lowest: [String: (seq: Int, id: ObjectID)] = [:]
        forEachStoredEvent(in: objects.packIndexes, skipping: chained, needles: needles) { id, e in
            guard let head = headSeqs[e.model], e.seq > head.seq, e.seq < lowest[e.model]?.seq ?? Int.max else { return }
            lowest[e.model] = (e.seq, id)
        }
        for (model, e) in lowest { let head = headSeqs[model]!; reports[head.index].problem = rolledBack(e.seq, e.id, head: head.seq) }
        checkIndexRows(&reports)
        return reports
    }

    /// Walks one chain (a model's registry, or the taint chain) from its head ref
    /// (relative to `refs/`), recording the ids seen; returns the head's seq.
    func walkChain<E: ChainedEvent>(_ type: E.Type, chain model: String, head: String, _ report: inout ChainReport,
                                    _ chained: inout Set<ObjectID>, visit: ((ObjectID, E) -> Void)? = nil) -> Int {
        let headID: ObjectID?
        do { headID = try refs.chainHead(head) }
        catch { report.problem = "head ref of \(model): \(error)"; return 0 }
        var next: ObjectID? = headID
        var later: E?
        var headSeq = 0
        while let id = next {
            let where_ = later.map { "event seq \($0.seq - 1) (\(id.hex), the previous of seq \($0.seq))" } ?? "head event \(id.hex)"
            let e: E
            do {
                guard let info = objects.info(id) else {
                    report.problem = "\(where_) is missing: history was deleted"; return headSeq
                }
                guard info.kind == .manifest else { report.problem = "\(where_) is a \(info.kind), not an event"; return headSeq }
                e = try chainEvent(id, as: E.self)
            } catch {
                report.problem = "\(where_) was altered: \(error)"; return headSeq
            }
            report.events += 1
            chained.insert(id)
            visit?(id, e)
            if later == nil { headSeq = e.seq }
            if e.chain != model { report.problem = "event seq \(e.seq) (\(id.hex)) belongs to '\(e.chain)', not \(model)"; return headSeq }
            if let later {
                if e.seq != later.seq - 1 {
                    report.problem = "event seq \(later.seq) links to \(id.hex), whose seq is \(e.seq): events were removed or reordered"; return headSeq
                }
                if let t = Timestamp.parse(e.time), let u = Timestamp.parse(later.time), t > u {
                    report.problem = "event seq \(later.seq) (\(later.time)) is earlier than event seq \(e.seq) (\(e.time)) before it: events were reordered"; return headSeq
                }
            }
            guard Timestamp.parse(e.time) != nil else { report.problem = "event seq \(e.seq) (\(id.hex)) has a bad time '\(e.time)'"; return headSeq }
            if e.previous == nil && e.seq != 1 {
                report.problem = "event seq \(e.seq) (\(id.hex)) has no previous event but is not the first: earlier history was cut off"; return headSeq
            }
            later = e
            next = e.previous
        }
        return headSeq
    }
}
