import MLVBasics
import MLVModel
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// A model's newest registry event and its id.
public struct RegistryHead: Sendable {
    public var id: ObjectID
    public var event: Event
}

/// One model for `mlv models`: its latest version and who holds which stage.
public struct ModelSummary: Sendable {
    public var name: String
    public var latest: Int
    public var latestID: ObjectID
    /// The latest version's manifest; nil when `models(only:manifests:)` was told not to read it.
    public var manifest: ModelManifest?
    public var versions: Int
    /// The registry after its newest event (empty when nothing was ever promoted).
    public var state: RegistryState
    public var head: ObjectID?
}

/// What `mlv audit --verify` found on one model's chain.
public struct ChainReport: Sendable {
    public var model: String
    public var events: Int
    /// The first bad event found walking from the head back, described; nil when intact.
    public var problem: String?
    public var isIntact: Bool { problem == nil }
}

extension Repository {
    var stagesPath: String { storePath + "/stages" }

    // MARK: identity

    /// The identity acting now, or `actor` when given.
    /// - Throws: `MLVError.invalidArgument` when it is empty or only spaces.
    public func actingIdentity(_ actor: String? = nil) throws -> String {
        let who = actor ?? identity
        guard !who.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\n" }) else {
            throw MLVError.invalidArgument("the identity is empty; set MLV_IDENTITY or run 'mlv config identity NAME'")
        }
        return who
    }

    // MARK: stages

    /// The repository's stages: `.mlv/stages`, or the defaults (`staging`, `production`
    /// single-holder, `archived`) when that file was never written.
    /// - Throws: `MLVError.damaged` when the file does not decode.
    public func stageConfig() throws -> StageConfig {
        guard let bytes = try wrap({ try FS.readFileIfExists(stagesPath) }) else { return .defaults }
        do { return try StageConfig.decode(bytes) } catch { throw MLVError.damaged("'\(stagesPath)' is damaged: \(error)") }
    }

    /// Adds a stage.
    /// - Throws: `.invalidName` for a bad stage name, `.refused` when it exists.
    public func addStage(_ name: String, policy: StagePolicy) throws {
        if let p = stageNameProblem(name) { throw MLVError.invalidName(name, reason: p) }
        try updateStages { config in
            if config.stages[name] != nil { throw MLVError.refused("stage '\(name)' already exists (change it with 'mlv stage set')") }
            config.stages[name] = policy
        }
    }

    /// Changes a stage's rules; nil leaves a rule as it is. Existing holders stay.
    /// - Throws: `.notFound` for an unknown stage.
    public func setStage(_ name: String, approvals: Int?, single: Bool?, distinctApprovers: Bool?) throws {
        try updateStages { config in
            guard var p = config.stages[name] else { throw unknownStage(name, config) }
            if let approvals { p.approvals = approvals }
            if let single {
                if single, try modelNames().contains(where: { (try registryHead(model: $0)?.event.state.stages[name]?.count ?? 0) > 1 }) {
                    throw MLVError.refused("stage '\(name)' has more than one holder in some model; it cannot become single-holder")
                }
                p.single = single
            }
            if let distinctApprovers { p.distinctApprovers = distinctApprovers }
            config.stages[name] = p
        }
    }

    /// Removes a stage, refusing while any version of any model holds it.
    /// - Throws: `.notFound` for an unknown stage, `.refused` while it is held.
    public func removeStage(_ name: String) throws {
        try updateStages { config in
            guard config.stages[name] != nil else { throw unknownStage(name, config) }
            for model in try modelNames() {
                if let holders = try registryHead(model: model)?.event.state.stages[name], !holders.isEmpty {
                    throw MLVError.refused("stage '\(name)' is held by \(holders.map { "\(model)@v\($0.version)" }.joined(separator: ", ")); move it out first")
                }
            }
            config.stages[name] = nil
        }
    }

    /// Reads, changes and atomically rewrites `.mlv/stages` under `stages.lock`.
    private func updateStages(_ change: (inout StageConfig) throws -> Void) throws {
        let lock: LockFile
        do { lock = try LockFile.acquire(stagesPath + ".lock") }
        catch let e as LockFile.Failure { throw MLVError.store(.locked(e.description)) }
        defer { lock.release() }
        var config = try stageConfig()
        try change(&config)
        try wrap {
            try FS.atomicWrite(stagesPath, config.canonicalBytes(),
                               crashPoints: PublishCrashPoints(before: "stages.before-rename", after: "stages.after-rename"))
        }
    }

    func stageNameProblem(_ name: String) -> String? {
        if let p = ArtifactName.problem(with: name) { return p }
        if name == "latest" { return "'latest' is reserved" }
        if (try? RefSpec.parse("x@" + name))?.selector == .version(Int(name.dropFirst()) ?? -1) { return "'\(name)' reads as a version" }
        return nil
    }

    func unknownStage(_ name: String, _ config: StageConfig) -> MLVError {
        .notFound("no stage '\(name)' is configured (stages: \(config.stages.keys.sorted().joined(separator: ", ")); add one with 'mlv stage add')")
    }

    // MARK: reading the registry

    /// Every model name, sorted.
    public func modelNames() throws -> [String] {
        try wrap { try refs.names(kind: Self.modelKind) }
    }

    /// Reads one event object.
    /// - Throws: `.store(.missingObject/.corruptObject)`, `.damaged` for a non-event.
    public func event(_ id: ObjectID) throws -> Event {
        let json = try manifestJSON(id)
        do { return try Event(json: json) } catch let e as ModelError { throw MLVError.damaged("event \(id.short): \(e.message)") }
    }

    /// The newest event of a model, or nil when nothing was recorded yet.
    public func registryHead(model: String) throws -> RegistryHead? {
        guard let id = try wrap({ try refs.head(kind: Self.modelKind, name: model) }) else { return nil }
        return RegistryHead(id: id, event: try event(id))
    }

    /// A model's events, newest first.
    public func history(model: String) throws -> [(id: ObjectID, event: Event)] {
        try requireModel(model)
        var out: [(ObjectID, Event)] = []
        var next = try wrap { try refs.head(kind: Self.modelKind, name: model) }
        while let id = next {
            let e = try event(id)
            out.append((id, e))
            next = e.previous
            if out.count > Int(Int32.max) { break }
        }
        return out
    }

    /// The registry of `model` as it stood at `time` (seconds since the epoch): the state
    /// after the newest event not later than it. Walks back from the head only as far
    /// as that event.
    public func registryState(model: String, at time: Int64) throws -> (state: RegistryState, event: Event?) {
        try requireModel(model)
        var next = try wrap { try refs.head(kind: Self.modelKind, name: model) }
        while let id = next {
            let e = try event(id)
            if let t = Timestamp.parse(e.time), t <= time { return (e.state, e) }
            next = e.previous
        }
        return (RegistryState(), nil)
    }

    /// What `registryState(model:at:)` says for several models (the state and the seq of
    /// the event that answers), read in parallel; results in the order of `models`. The
    /// event index names the event to read for each model whose indexed events are exactly
    /// one per seq up to its head, the highest being the head (so they are its chain); any
    /// other model, or every model when the index cannot be used, is walked from its head.
    /// Heads, their seqs, times and states come from `modelSummaries`, so when the answer
    /// is the head event no event is read, and a model whose head is not later than `time`
    /// needs no query beyond its chain's counts.
    public func registryStates(models: [String], at time: Int64) throws -> [(state: RegistryState, seq: Int?)] {
        let summaries = try modelSummaries(models, states: false)
        for (m, s) in zip(models, summaries) where s == nil { try requireModel(m) }
        var known: [Int: ObjectID?] = [:]  // model's position -> the event to read (nil: none that early)
        if let index = eventIndex(), let chains = try? index.chainStats(only: models.count <= 64 ? models : nil) {
            var ask: [Int] = []  // trusted chains whose head is later than `time` (or has no time)
            for (i, s) in summaries.enumerated() {
                guard let s, let head = s.summary.head else { known[i] = .some(nil); continue }
                guard let seq = s.headSeq, let c = chains[models[i]],
                      c.count == seq, c.distinct == seq, c.top == seq, c.topID == head else { continue }
                if let t = s.headTime, t <= time { known[i] = .some(head) } else { ask.append(i) }
            }
            if !ask.isEmpty, let newest = try? index.newest(at: time, only: ask.count <= 64 ? ask.map { models[$0] } : nil) {
                for i in ask { known[i] = .some(newest[models[i]]) }
            }
        }
        return try Parallel.map(Array(models.indices), batch: 16) { i in
            guard let found = known[i] else {
                let walked = try registryState(model: models[i], at: time)
                return (walked.state, walked.event?.seq)
            }
            guard let id = found else { return (RegistryState(), nil) }
            if let s = summaries[i], id == s.summary.head, let state = s.headState() { return (state, s.headSeq) }
            let e = try event(id)
            return (e.state, e.seq)
        }
    }

    /// Each model with its latest version and the stages its versions hold: the summaries
    /// the derived index keeps (checked per model against its head file and versions
    /// directory; see `ModelSummaryIndex`), read afresh where they do not match; plus the
    /// latest version's manifest unless `manifests` is false.
    /// - Parameter only: just this model (`.notFound` when there is none).
    public func models(only: String? = nil, manifests: Bool = true) throws -> [ModelSummary] {
        if let only { try requireModel(only) }
        let all = try modelSummaries(only.map { [$0] } ?? modelNames(), pruning: only == nil).compactMap { $0?.summary }
        guard manifests else { return all }
        return try Parallel.map(all, batch: 16) { m in
            var m = m
            m.manifest = try modelManifest(m.latestID)
            return m
        }
    }

    /// Every version of a model, oldest first.
    /// - Throws: `.notFound` for an unknown model.
    public func modelVersions(of name: String) throws -> [(version: Int, id: ObjectID, manifest: ModelManifest)] {
        try requireModel(name)
        return try wrap { try refs.versions(kind: Self.modelKind, name: name) }.map { v in
            (v.number, v.id, try modelManifest(v.id))
        }
    }

    public func modelManifest(_ id: ObjectID) throws -> ModelManifest {
        let json = try manifestJSON(id)
        return try wrap { try ModelManifest(json: json) }
    }

    func requireModel(_ model: String) throws {
        guard try wrap({ try refs.latestVersion(kind: Self.modelKind, name: model) }) != nil else {
            let s = try suggestions(for: model, kinds: [.model])
            throw MLVError.notFound("no model '\(model)'" + (s.isEmpty ? "" : "; did you mean \(s.joined(separator: ", "))?"))
        }
    }

    /// Resolves a ref that must name a model version.
    func resolveModel(_ ref: String) throws -> Resolved {
        var text = ref
        if !text.contains(":") && !RefSpec.isIDPrefix(text) { text = "model:" + text }
        let r: Resolved
        do { r = try resolve(text) } catch MLVError.unknownRef(_, let s) { throw MLVError.unknownRef(ref, suggestions: s) }
        guard r.kind == Self.modelKind else { throw MLVError.invalidArgument("'\(ref)' is a \(r.kind), not a model version") }
        guard r.split == nil else { throw MLVError.invalidArgument("'\(ref)': models have no splits") }
        return r
    }

    // MARK: changing the registry

    /// Records that the acting identity approves `ref` for `stage`.
    /// - Throws: `.notFound` for an unknown version or stage; `.refused` when this
    ///   identity already approved it; `.registryChanged` when another change won a race.
    @discardableResult
    public func approve(_ ref: String, for stage: String, message: String, actor: String? = nil) throws -> RegistryHead {
        let who = try actingIdentity(actor)
        let r = try resolveModel(ref)
        let config = try stageConfig()
        guard config.stages[stage] != nil else { throw unknownStage(stage, config) }
        return try record(model: r.name, display: "\(r.name)@\(stage)", actor: who, message: message) { previous, now in
            var state = previous?.state ?? RegistryState()
            if state.pending.contains(where: { $0.version == r.version && $0.stage == stage && $0.actor == who }) {
                throw MLVError.refused("\(who) already approved \(r.display) for \(stage)")
            }
            if state.stages[stage]?.contains(where: { $0.version == r.version }) == true {
                throw MLVError.refused("\(r.display) already holds \(stage)")
            }
            state.pending.append(Approval(version: r.version, stage: stage, actor: who, time: now, message: message))
            return (Event.Action.approve, r, stage, nil, [], state)
        }
    }

    /// Moves `ref` into `stage`. A version holds one stage at a time, so it leaves its
    /// current one; promoting into a single-holder stage moves the previous holder to
    /// `archived` in the same event (one head move: never zero or two holders).
    /// A version that is tainted, directly or through its lineage, is refused unless
    /// `force` is set and `message` gives a reason; the event then records `forced` and
    /// the taint as its `reason`.
    /// - Throws: `.notFound` for an unknown version or stage; `.refused` when approvals
    ///   are missing (saying who approved, how many are needed, and who did not count) or
    ///   the version is tainted without `force`; `.registryChanged` when another change won a race.
    @discardableResult
    public func promote(_ ref: String, to stage: String, message: String, actor: String? = nil,
                        force: Bool = false) throws -> RegistryHead {
        let who = try actingIdentity(actor)
        let r = try resolveModel(ref)
        let config = try stageConfig()
        guard let policy = config.stages[stage] else { throw unknownStage(stage, config) }
        let marks = stage == StageConfig.archived ? [] : try taintMarks(of: r.id)
        if !marks.isEmpty {
            let why = marks.map { $0.isDirect ? "tainted (\($0.taint.reason))" : "tainted via \($0.taint.ref) (\($0.taint.reason))" }
                .joined(separator: "; ")
            if !force {
                throw MLVError.refused("cannot promote \(r.display) to \(stage): it is \(why); promote with --force and -m giving the reason to override")
            }
            if message.allSatisfy({ $0 == " " || $0 == "\n" || $0 == "\t" }) {
                throw MLVError.invalidArgument("a forced promotion of tainted \(r.display) needs a reason (-m)")
            }
        }
        let reason = marks.isEmpty ? nil : marks.map { $0.isDirect ? "tainted: \($0.taint.reason)" : "tainted via \($0.taint.ref): \($0.taint.reason)" }.joined(separator: "; ")
        return try record(model: r.name, display: "\(r.name)@\(stage)", actor: who, message: message,
                          forced: reason != nil, reason: reason) { previous, now in
            var state = previous?.state ?? RegistryState()
            if state.stages[stage]?.contains(where: { $0.version == r.version }) == true {
                throw MLVError.refused("\(r.display) already holds \(stage)")
            }
            let given = state.pending.filter { $0.version == r.version && $0.stage == stage }
            let counted = given.filter { !policy.distinctApprovers || $0.actor != who }
            if counted.count < policy.approvals {
                var why = "cannot promote \(r.display) to \(stage): it needs \(policy.approvals) approval\(policy.approvals == 1 ? "" : "s") for \(r.display), has \(counted.count)"
                why += given.isEmpty ? " (nobody approved it)" : " (approved by \(given.map(\.actor).joined(separator: ", ")))"
                let notDistinct = given.filter { policy.distinctApprovers && $0.actor == who }
                if !notDistinct.isEmpty {
                    why += "; \(notDistinct[0].actor) approved but is also the promoter, and \(stage) requires distinct approvers"
                }
                throw MLVError.refused(why + "; ask with 'mlv approve \(r.display) --for \(stage) -m ...'")
            }
            let holder = Holder(version: r.version, id: r.id, since: now, by: who)
            for (s, hs) in state.stages { state.stages[s] = hs.filter { $0.version != r.version } }
            if policy.single, let displaced = state.stages[stage], !displaced.isEmpty {
                if stage != StageConfig.archived, config.stages[StageConfig.archived] != nil {
                    state.stages[StageConfig.archived, default: []] += displaced.map {
                        Holder(version: $0.version, id: $0.id, since: now, by: who)
                    }
                }
                state.stages[stage] = []
            }
            state.stages[stage, default: []].append(holder)
            state.stages = state.stages.filter { !$0.value.isEmpty }
            state.pending.removeAll { $0.version == r.version && $0.stage == stage }
            return (Event.Action.promote, r, stage, nil, counted, state)
        }
    }

    /// Points `alias` at `ref` (moving it if it pointed elsewhere).
    /// - Throws: `.invalidName` for a bad or reserved alias; `.refused` when it already
    ///   points there; `.registryChanged` when another change won a race.
    @discardableResult
    public func setAlias(_ ref: String, alias: String, message: String = "", actor: String? = nil) throws -> RegistryHead {
        let who = try actingIdentity(actor)
        if let p = stageNameProblem(alias) { throw MLVError.invalidName(alias, reason: p) }
        let r = try resolveModel(ref)
        let config = try stageConfig()
        if config.stages[alias] != nil { throw MLVError.invalidName(alias, reason: "it is a stage; use 'mlv promote model'") }
        return try record(model: r.name, display: "\(r.name)@\(alias)", actor: who, message: message) { previous, now in
            var state = previous?.state ?? RegistryState()
            if state.aliases[alias]?.version == r.version { throw MLVError.refused("\(r.name)@\(alias) already points at \(r.display)") }
            state.aliases[alias] = Holder(version: r.version, id: r.id, since: now, by: who)
            return (Event.Action.aliasSet, r, nil, alias, [], state)
        }
    }

    /// Removes `alias` from `model`.
    /// - Throws: `.notFound` for an unknown model or alias; `.registryChanged` on a lost race.
    @discardableResult
    public func removeAlias(model: String, alias: String, message: String = "", actor: String? = nil) throws -> RegistryHead {
        let who = try actingIdentity(actor)
        try requireModel(model)
        return try record(model: model, display: "\(model)@\(alias)", actor: who, message: message) { previous, _ in
            var state = previous?.state ?? RegistryState()
            guard let old = state.aliases[alias] else {
                throw MLVError.notFound("\(model) has no alias '\(alias)'" + (state.aliases.isEmpty ? "" : " (it has \(state.aliases.keys.sorted().joined(separator: ", ")))"))
            }
            state.aliases[alias] = nil
            let r = Resolved(kind: Self.modelKind, name: model, version: old.version, id: old.id, split: nil)
            return (Event.Action.aliasRemove, r, nil, alias, [], state)
        }
    }

    /// Appends one event to `model`'s chain (see `appendEvent`).
    private func record(
        model: String, display: String, actor: String, message: String, forced: Bool = false, reason: String? = nil,
        _ change: (_ previous: Event?, _ now: String) throws -> (Event.Action, Resolved, String?, String?, [Approval], RegistryState)
    ) throws -> RegistryHead {
        let (id, event) = try appendEvent(head: "\(Self.modelKind)/\(model)/head", display: display) { (previous: (id: ObjectID, event: Event)?, now: String) in
            let (action, r, stage, alias, approvals, state) = try change(previous?.event, now)
            return Event(model: model, seq: (previous?.event.seq ?? 0) + 1, previous: previous?.id, actor: actor, time: now,
                         action: action, version: r.version, id: r.id, stage: stage, alias: alias, message: message,
                         approvals: approvals, forced: forced, reason: reason, state: state)
        }
        return RegistryHead(id: id, event: event)
    }
}
