import MLVBasics

/// The rules of one stage: how many approvals a promotion into it needs, whether it has
/// at most one holder, and whether the approvers must be distinct people (distinct from
/// each other and from the person promoting).
public struct StagePolicy: Sendable, Equatable {
    public var approvals: Int
    public var single: Bool
    public var distinctApprovers: Bool

    public init(approvals: Int = 0, single: Bool = false, distinctApprovers: Bool = false) {
        self.approvals = approvals; self.single = single; self.distinctApprovers = distinctApprovers
    }

    var json: JSON {
        .object(["approvals": .int(Int64(approvals)), "single": .bool(single), "distinctApprovers": .bool(distinctApprovers)])
    }

    init(json: JSON, stage: String) throws {
        guard let a = json["approvals"]?.int, a >= 0, a <= 1000, let s = json["single"]?.bool,
              let d = json["distinctApprovers"]?.bool else {
            throw ModelError("stage '\(stage)' is malformed")
        }
        self.init(approvals: Int(a), single: s, distinctApprovers: d)
    }
}

/// The stages of a repository (`mlv.stages/1`), kept in `.mlv/stages`.
public struct StageConfig: Sendable, Equatable {
    public static let schema = "mlv.stages/1"
    /// The stage a single-holder stage's previous holder moves to.
    public static let archived = "archived"

    public var stages: [String: StagePolicy]

    public init(stages: [String: StagePolicy]) { self.stages = stages }

    /// `staging`, `production` (single holder), `archived`.
    public static let defaults = StageConfig(stages: [
        "staging": StagePolicy(),
        "production": StagePolicy(single: true),
        archived: StagePolicy(),
    ])

    public func canonicalBytes() -> [UInt8] {
        JSON.object(["schema": .string(Self.schema), "stages": .object(stages.mapValues(\.json))]).canonicalBytes() + [10]
    }

    /// - Throws: `ModelError` when the bytes are not a stage configuration.
    public static func decode(_ bytes: [UInt8]) throws -> StageConfig {
        let json = try JSON.parse(bytes)
        guard json["schema"]?.string == schema, let object = json["stages"]?.object else {
            throw ModelError("not a stage configuration (\(schema))")
        }
        var stages: [String: StagePolicy] = [:]
        for (name, value) in object { stages[name] = try StagePolicy(json: value, stage: name) }
        return StageConfig(stages: stages)
    }
}

/// A version holding a stage, with when and by whom it got there.
public struct Holder: Sendable, Equatable {
    public var version: Int
    public var id: ObjectID
    public var since: String
    public var by: String

    public init(version: Int, id: ObjectID, since: String, by: String) {
        self.version = version; self.id = id; self.since = since; self.by = by
    }

    var json: JSON {
        .object(["version": .int(Int64(version)), "id": .string(id.hex), "since": .string(since), "by": .string(by)])
    }

    init(json: JSON) throws {
        guard let v = json["version"]?.int, v > 0, let hex = json["id"]?.string, let id = ObjectID(hex: hex),
              let since = json["since"]?.string, let by = json["by"]?.string else { throw ModelError("malformed stage holder") }
        self.init(version: Int(v), id: id, since: since, by: by)
    }
}

/// A sign-off: one person approved one version for one stage.
public struct Approval: Sendable, Equatable {
    public var version: Int
    public var stage: String
    public var actor: String
    public var time: String
    public var message: String

    public init(version: Int, stage: String, actor: String, time: String, message: String) {
        self.version = version; self.stage = stage; self.actor = actor; self.time = time; self.message = message
    }

    var json: JSON {
        .object(["version": .int(Int64(version)), "stage": .string(stage), "actor": .string(actor), "time": .string(time),
                 "message": .string(message)])
    }

    init(json: JSON) throws {
        guard let v = json["version"]?.int, v > 0, let stage = json["stage"]?.string, let actor = json["actor"]?.string,
              let time = json["time"]?.string, let message = json["message"]?.string else { throw ModelError("malformed approval") }
        self.init(version: Int(v), stage: stage, actor: actor, time: time, message: message)
    }
}

/// Who holds which stage, what each alias points at, and the approvals not yet used by a
/// promotion: the whole registry of one model after an event.
public struct RegistryState: Sendable, Equatable {
    /// Stage -> holders, oldest first. A stage nobody holds has no key.
    public var stages: [String: [Holder]]
    public var aliases: [String: Holder]
    public var pending: [Approval]

    public init(stages: [String: [Holder]] = [:], aliases: [String: Holder] = [:], pending: [Approval] = []) {
        self.stages = stages; self.aliases = aliases; self.pending = pending
    }

    /// The stages `version` holds, sorted.
    public func stages(of version: Int) -> [String] {
        stages.filter { $0.value.contains { $0.version == version } }.keys.sorted()
    }

    var json: JSON {
        .object([
            "stages": .object(stages.mapValues { .array($0.map(\.json)) }),
            "aliases": .object(aliases.mapValues(\.json)),
            "pending": .array(pending.map(\.json)),
        ])
    }

    init(json: JSON) throws {
        guard let s = json["stages"]?.object, let a = json["aliases"]?.object, let p = json["pending"]?.array else {
            throw ModelError("malformed registry state")
        }
        stages = try s.mapValues { v in
            guard let list = v.array else { throw ModelError("malformed stage holders") }
            return try list.map(Holder.init(json:))
        }
        aliases = try a.mapValues(Holder.init(json:))
        pending = try p.map(Approval.init(json:))
    }
}

/// One change to a model's registry (`mlv.event/1`), chained to the previous event of the
/// same model by id, like a commit to its parent. Carries the whole state after the
/// change, so the head event alone answers "who holds what", and any event answers it
/// for its moment.
public struct Event: Sendable, Equatable {
    public static let schema = "mlv.event/1"

    public enum Action: String, Sendable, CaseIterable {
        case approve, promote, aliasSet = "alias-set", aliasRemove = "alias-remove"
    }

    public var model: String
    /// 1 for the first event of a model, then +1 each.
    public var seq: Int
    /// The previous event's id; nil for the first.
    public var previous: ObjectID?
    public var actor: String
    /// RFC 3339 UTC; never earlier than the previous event's.
    public var time: String
    public var action: Action
    public var version: Int
    /// The version's manifest id.
    public var id: ObjectID
    public var stage: String?
    public var alias: String?
    public var message: String
    /// The approvals that satisfied the stage's policy (promotions).
    public var approvals: [Approval]
    public var forced: Bool
    public var reason: String?
    public var state: RegistryState

    public init(model: String, seq: Int, previous: ObjectID?, actor: String, time: String, action: Action, version: Int,
                id: ObjectID, stage: String? = nil, alias: String? = nil, message: String, approvals: [Approval] = [],
                forced: Bool = false, reason: String? = nil, state: RegistryState) {
        self.model = model; self.seq = seq; self.previous = previous; self.actor = actor; self.time = time
        self.action = action; self.version = version; self.id = id; self.stage = stage; self.alias = alias
        self.message = message; self.approvals = approvals; self.forced = forced; self.reason = reason; self.state = state
    }

    public var json: JSON {
        .object([
            "schema": .string(Self.schema),
            "model": .string(model),
            "seq": .int(Int64(seq)),
            "previous": previous.map { .string($0.hex) } ?? .null,
            "actor": .string(actor),
            "time": .string(time),
            "action": .string(action.rawValue),
            "version": .int(Int64(version)),
            "id": .string(id.hex),
            "stage": stage.map { .string($0) } ?? .null,
            "alias": alias.map { .string($0) } ?? .null,
            "message": .string(message),
            "approvals": .array(approvals.map(\.json)),
            "forced": .bool(forced),
            "reason": reason.map { .string($0) } ?? .null,
            "state": state.json,
        ])
    }

    public func canonicalBytes() -> [UInt8] { json.canonicalBytes() }

    /// Decodes an event, checking every field's type.
    /// - Throws: `ModelError` naming the bad field.
    public init(json: JSON) throws {
        guard json["schema"]?.string == Self.schema else {
            throw ModelError("not an event (schema \(json["schema"]?.string ?? "missing"))")
        }
        func string(_ key: String) throws -> String {
            guard let s = json[key]?.string else { throw ModelError("event field '\(key)' is missing or not a string") }
            return s
        }
        func optional(_ key: String) throws -> String? {
            guard let v = json[key] else { throw ModelError("event field '\(key)' is missing") }
            if v == .null { return nil }
            guard let s = v.string else { throw ModelError("event field '\(key)' is not a string") }
            return s
        }
        model = try string("model")
        guard let seq = json["seq"]?.int, seq > 0, seq < Int64(Int32.max) else { throw ModelError("event seq is missing or not positive") }
        self.seq = Int(seq)
        if let p = try optional("previous") {
            guard let id = ObjectID(hex: p) else { throw ModelError("event previous is not an object id") }
            previous = id
        } else {
            previous = nil
        }
        actor = try string("actor")
        time = try string("time")
        guard let action = Action(rawValue: try string("action")) else { throw ModelError("event action is unknown") }
        self.action = action
        guard let v = json["version"]?.int, v > 0, v < Int64(Int32.max) else { throw ModelError("event version is missing") }
        version = Int(v)
        guard let id = ObjectID(hex: try string("id")) else { throw ModelError("event id is not an object id") }
        self.id = id
        stage = try optional("stage")
        alias = try optional("alias")
        message = try string("message")
        guard let a = json["approvals"]?.array else { throw ModelError("event has no approvals list") }
        approvals = try a.map(Approval.init(json:))
        guard let f = json["forced"]?.bool else { throw ModelError("event forced flag is missing") }
        forced = f
        reason = try optional("reason")
        guard let s = json["state"] else { throw ModelError("event has no state") }
        state = try RegistryState(json: s)
    }
}
