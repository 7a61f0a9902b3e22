import MLVBasics
import MLVModel
import MLVStore

extension Repository {
    /// Re-checks `model`'s event chain from the head back: every event's bytes hash to its
    /// id (the pack read re-hashes), decode as an event of this model, `seq` falls by one
    /// at each step to 1 with no previous, and times never run backwards. Then looks for
    /// stored events of this model newer than the head (`seq` beyond the head's), which
    /// mean the head was moved back. Names the first bad event found.
    /// - Throws: `.notFound` for an unknown model.
    public func verifyChain(model: String) throws -> ChainReport {
        try requireModel(model)
        var report = ChainReport(model: model, events: 0, problem: nil)
        let headID: ObjectID?
        do { headID = try refs.head(kind: Self.modelKind, name: model) }
        catch { report.problem = "head ref of \(model): \(error)"; return report }
        guard let headID else { return report }
        var next: ObjectID? = headID
        var later: Event?
        var headSeq = 0
        while let id = next {
            let where_ = later.map { "event seq \($0.seq - 1) (\(id.hex), the previous of seq \($0.seq))" } ?? "head event \(id.hex)"
            let e: Event
            do {
                guard let info = objects.info(id) else {
                    report.problem = "\(where_) is missing: history was deleted"; return report
                }
                guard info.kind == .manifest else { report.problem = "\(where_) is a \(info.kind), not an event"; return report }
                e = try event(id)
            } catch {
                report.problem = "\(where_) was altered: \(error)"; return report
            }
            report.events += 1
            if later == nil { headSeq = e.seq }
            if e.model != model { report.problem = "event seq \(e.seq) (\(id.hex)) belongs to model '\(e.model)', not \(model)"; return report }
            if let later {
                if e.seq != later.seq - 1 {
                    report.problem = "event seq \(later.seq) links to \(id.hex), whose seq is \(e.seq): events were removed or reordered"; return report
                }
                if let t = Timestamp.parse(e.time), let u = Timestamp.parse(later.time), t > u {
                    report.problem = "event seq \(later.seq) (\(later.time)) is earlier than event seq \(e.seq) (\(e.time)) before it: events were reordered"; return report
                }
            }
            guard Timestamp.parse(e.time) != nil else { report.problem = "event seq \(e.seq) (\(id.hex)) has a bad time '\(e.time)'"; return report }
            if e.previous == nil && e.seq != 1 {
                report.problem = "event seq \(e.seq) (\(id.hex)) has no previous event but is not the first: earlier history was cut off"; return report
            }
            later = e
            next = e.previous
        }
        // A rolled-back head: events of this model beyond the head's seq exist in the packs.
        for index in objects.packIndexes {
            for i in 0..<index.count {
                let entry = index.entry(at: i)
                guard entry.kind == .manifest, entry.rawLength < 1 << 20,
                      let (_, bytes) = try? objects.read(entry.id), let json = try? JSON.parse(bytes),
                      schemaOf(json) == Event.schema, let e = try? Event(json: json), e.model == model, e.seq > headSeq else { continue }
                report.problem = "event seq \(e.seq) (\(entry.id.hex)) is newer than the head (seq \(headSeq)): the head was moved back, or a change crashed before moving it"
                return report
            }
        }
        return report
    }
}
