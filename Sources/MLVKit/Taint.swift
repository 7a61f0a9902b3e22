import MLVBasics
import MLVModel
import MLVStore

/// Why a version counts as tainted: a taint on it or on something upstream of it, and
/// the lineage path from the tainted version down to it.
public struct TaintMark: Sendable {
    public var taint: Taint
    /// Displays from the tainted version to the one asked about (one element when direct).
    public var path: [String]
    public var isDirect: Bool { path.count <= 1 }
    /// `tainted: REASON` or `tainted via mnist-raw@v3: REASON`.
    public var summary: String {
        isDirect ? "tainted: \(taint.reason)" : "tainted via \(taint.ref): \(taint.reason)"
    }
}

extension Repository {
    /// The taint chain's head ref, relative to `refs/`.
    static let taintHead = "taint/head"

    /// Every taint in force, by manifest id (the taint chain's head state).
    /// - Throws: `.damaged` when the head event does not decode.
    public func taints() throws -> [ObjectID: Taint] {
        guard let head = try wrap({ try refs.chainHead(Self.taintHead) }) else { return [:] }
        return try chainEvent(head, as: TaintEvent.self).state
    }

    /// Every taint and untaint, newest first.
    public func taintHistory() throws -> [(id: ObjectID, event: TaintEvent)] {
        var out: [(ObjectID, TaintEvent)] = []
        var next = try wrap { try refs.chainHead(Self.taintHead) }
        while let id = next, out.count < Int(Int32.max) {
            let e = try chainEvent(id, as: TaintEvent.self)
            out.append((id, e))
            next = e.previous
        }
        return out
    }

    /// Re-checks the taint chain like a model's registry chain (see `verifyChains`).
    public func verifyTaintChain() -> ChainReport {
        var report = ChainReport(model: TaintEvent.chainName, events: 0, problem: nil)
        var seen = Set<ObjectID>()
        _ = walkChain(TaintEvent.self, chain: TaintEvent.chainName, head: Self.taintHead, &report, &seen)
        return report
    }

    /// Marks a dataset or model version as known bad. Everything downstream of it shows
    /// "tainted via REF" and cannot be promoted without `--force`.
    /// - Throws: `.unknownRef`, `.invalidArgument` for an empty reason or a split,
    ///   `.refused` when it is already tainted, `.registryChanged` on a lost race.
    @discardableResult
    public func taint(_ ref: String, reason: String, actor: String? = nil) throws -> (id: ObjectID, event: TaintEvent) {
        try changeTaint(ref, reason: reason, actor: actor, action: .taint)
    }

    /// Lifts a taint.
    /// - Throws: `.unknownRef`, `.invalidArgument` for an empty reason, `.notFound`
    ///   when the version is not tainted, `.registryChanged` on a lost race.
    @discardableResult
    public func untaint(_ ref: String, reason: String, actor: String? = nil) throws -> (id: ObjectID, event: TaintEvent) {
        try changeTaint(ref, reason: reason, actor: actor, action: .untaint)
    }

    private func changeTaint(_ ref: String, reason: String, actor: String?, action: TaintEvent.Action) throws -> (id: ObjectID, event: TaintEvent) {
        let who = try actingIdentity(actor)
        guard !reason.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\n" }) else {
            throw MLVError.invalidArgument("say why with -m REASON (\(action.rawValue) of \(ref))")
        }
        let r = try resolve(ref)
        guard r.split == nil else { throw MLVError.invalidArgument("'\(ref)': taint the whole version, not a split") }
        return try appendEvent(head: Self.taintHead, display: "the taint list") { (previous: (id: ObjectID, event: TaintEvent)?, now: String) in
            var state = previous?.event.state ?? [:]
            switch action {
            case .taint:
                if let t = state[r.id] { throw MLVError.refused("\(r.kindDisplay) is already tainted by \(t.by) since \(t.since): \(t.reason)") }
                state[r.id] = Taint(id: r.id, ref: r.kindDisplay, reason: reason, by: who, since: now)
            case .untaint:
                guard state[r.id] != nil else { throw MLVError.notFound("\(r.kindDisplay) is not tainted") }
                state[r.id] = nil
            }
            return TaintEvent(seq: (previous?.event.seq ?? 0) + 1, previous: previous?.id, actor: who, time: now, action: action,
                              id: r.id, ref: r.kindDisplay, message: reason, state: state)
        }
    }

    /// The taints that reach a version: on it, or on anything upstream of it, each with
    /// the path from the tainted version down. Empty (one ref read) when nothing is tainted.
    public func taintMarks(of id: ObjectID) throws -> [TaintMark] {
        let all = try taints()
        guard !all.isEmpty else { return [] }
        return try taintMarks(of: id.hex, taints: all, source: lineage(upstreamOf: [id.hex]))
    }

    func taintMarks(of key: String, taints all: [ObjectID: Taint], source: LineageSource) throws -> [TaintMark] {
        guard !all.isEmpty else { return [] }
        let g = try walkLineage(source, from: [key], .up)
        return g.order.compactMap { k -> TaintMark? in
            guard let id = ObjectID(hex: k), let t = all[id] else { return nil }
            return TaintMark(taint: t, path: g.pathKeys(to: k).reversed().map(g.display))
        }
    }

    /// Taint marks for many versions at once (listings), reading the taint list and
    /// opening the lineage once. Only a version downstream of a tainted one can carry a
    /// mark, so one walk down from every taint picks those out, and only they are walked
    /// up for their paths (a listing of 5,000 models shows some 50,000 versions; walking
    /// each up took 1.5 s with one taint in the store).
    public func taintMarks(of ids: [ObjectID]) throws -> [ObjectID: [TaintMark]] {
        let all = try taints()
        guard !all.isEmpty else { return [:] }
        let unique = Array(Set(ids))
        // The index brought up to date with the refs (a stat per ref directory) rather
        // than a lookup per version to prove it holds them all.
        let source = try lineage()
        let reached = Set(try walkLineage(source, from: all.keys.map(\.hex).sorted(), .down).order)
        var out: [ObjectID: [TaintMark]] = [:]
        for id in unique where reached.contains(id.hex) {
            let marks = try taintMarks(of: id.hex, taints: all, source: source)
            if !marks.isEmpty { out[id] = marks }
        }
        return out
    }
}
