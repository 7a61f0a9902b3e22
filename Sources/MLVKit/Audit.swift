import MLVBasics
import MLVModel
import MLVStore

extension Repository {
    /// Re-checks `model`'s event chain; see `verifyChains`.
    /// - Throws: `.notFound` for an unknown model.
    public func verifyChain(model: String) throws -> ChainReport {
        try verifyChains(models: [model])[0]
    }

    /// Re-checks each model's event chain from the head back: every event's bytes hash to
    /// its id (the pack read re-hashes), decode as an event of this model, `seq` falls by
    /// one at each step to 1 with no previous, and times never run backwards. Then one
    /// pass over the stored objects outside the chains looks for events of these models
    /// newer than their head (`seq` beyond the head's), which mean a head was moved back.
    /// Names the first bad event found.
    /// - Throws: `.notFound` for an unknown model.
    public func verifyChains(models: [String]) throws -> [ChainReport] {
        var reports: [ChainReport] = []
        var chained = Set<ObjectID>()
        var headSeqs: [String: (index: Int, seq: Int)] = [:]
        for model in models {
            try requireModel(model)
            var report = ChainReport(model: model, events: 0, problem: nil)
            let seq = walkChain(Event.self, chain: model, head: "\(Self.modelKind)/\(model)/head", &report, &chained)
            if report.isIntact { headSeqs[model] = (reports.count, seq) }
            reports.append(report)
        }
        guard !headSeqs.isEmpty else { return reports }
        // A rolled-back head: events of these models beyond the head's seq in the packs.
        // Canonical JSON sorts keys, so an event's bytes begin with its first key, `action`
        // (other manifests begin with `bytes` or `paths`), and name the model just after
        // `message`: both checked on the bytes before anything is parsed.
        let prefix = Array("{\"action\":\"".utf8)
        let needles = models.count <= 16 ? models.map { Array("\",\"model\":\"\($0)\",\"previous\":".utf8) } : nil
        for index in objects.packIndexes {
            for i in 0..<index.count {
                let entry = index.entry(at: i)
                guard entry.kind == .manifest, entry.rawLength < 1 << 20, !chained.contains(entry.id),
                      let (_, bytes) = try? objects.readUnverified(entry.id), bytes.starts(with: prefix),
                      needles?.contains(where: { contains(bytes, $0) }) ?? true,
                      let json = try? JSON.parse(bytes), let e = try? Event(json: json),
                      let head = headSeqs[e.model], e.seq > head.seq, reports[head.index].isIntact else { continue }
                reports[head.index].problem = "event seq \(e.seq) (\(entry.id.hex)) is newer than the head (seq \(head.seq)): the head was moved back, or a change crashed before moving it"
            }
        }
        return reports
    }

    /// Walks one chain (a model's registry, or the taint chain) from its head ref
    /// (relative to `refs/`), recording the ids seen; returns the head's seq.
    func walkChain<E: ChainedEvent>(_ type: E.Type, chain model: String, head: String, _ report: inout ChainReport,
                                    _ chained: inout Set<ObjectID>) -> Int {
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

    private func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
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
