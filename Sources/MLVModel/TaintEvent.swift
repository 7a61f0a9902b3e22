import MLVBasics

/// An event in a hash chain: numbered from 1, each naming the previous one's id, with
/// times that never run backwards. The registry's events (one chain per model) and the
/// taint events (one chain per repository) share the code that appends and verifies.
public protocol ChainedEvent: Sendable {
    /// The `schema` value of this event type.
    static var schema: String { get }
    /// 1 for the first event of the chain, then +1 each.
    var seq: Int { get }
    /// The previous event's id; nil for the first.
    var previous: ObjectID? { get }
    /// RFC 3339 UTC.
    var time: String { get }
    /// Which chain the event belongs to: the model's name, or `taint`.
    var chain: String { get }
    /// Decodes and checks every field.
    /// - Throws: `ModelError` naming the bad field.
    init(json: JSON) throws
    func canonicalBytes() -> [UInt8]
}

extension Event: ChainedEvent {
    public var chain: String { model }
}

/// A version marked known-bad: its manifest id, how it was named, why, by whom, since when.
public struct Taint: Sendable, Equatable {
    public var id: ObjectID
    /// The version as it was named (`mnist-raw@v3`, `model:digits@v2`).
    public var ref: String
    public var reason: String
    public var by: String
    public var since: String

    public init(id: ObjectID, ref: String, reason: String, by: String, since: String) {
        self.id = id; self.ref = ref; self.reason = reason; self.by = by; self.since = since
    }

    var json: JSON {
        .object(["id": .string(id.hex), "ref": .string(ref), "reason": .string(reason), "by": .string(by),
                 "since": .string(since)])
    }

    init(json: JSON) throws {
        let f = FieldReader(json: json, document: "taint")
        self.init(id: try f.id("id"), ref: try f.string("ref"), reason: try f.string("reason"), by: try f.string("by"),
                  since: try f.string("since"))
    }
}

/// One taint or untaint (`mlv.taint/1`), chained to the previous one like registry events
/// and carrying every taint in force after it, so the head alone answers "what is tainted".
public struct TaintEvent: Sendable, Equatable, ChainedEvent {
    public static let schema = "mlv.taint/1"
    /// The name of the chain (`refs/taint/head`).
    public static let chainName = "taint"

    public enum Action: String, Sendable {
        case taint, untaint
    }

    public var seq: Int
    public var previous: ObjectID?
    public var actor: String
    public var time: String
    public var action: Action
    /// The manifest tainted or untainted.
    public var id: ObjectID
    /// How it was named.
    public var ref: String
    public var message: String
    /// Every taint in force after this event, by manifest id.
    public var state: [ObjectID: Taint]

    public var chain: String { Self.chainName }

    public init(seq: Int, previous: ObjectID?, actor: String, time: String, action: Action, id: ObjectID, ref: String,
                message: String, state: [ObjectID: Taint]) {
        self.seq = seq; self.previous = previous; self.actor = actor; self.time = time; self.action = action
        self.id = id; self.ref = ref; self.message = message; self.state = state
    }

    public var json: JSON {
        .object([
            "schema": .string(Self.schema),
            "seq": .int(Int64(seq)),
            "previous": previous.map { .string($0.hex) } ?? .null,
            "actor": .string(actor),
            "time": .string(time),
            "action": .string(action.rawValue),
            "id": .string(id.hex),
            "ref": .string(ref),
            "message": .string(message),
            "state": .array(state.values.sorted { $0.id.hex < $1.id.hex }.map(\.json)),
        ])
    }

    public func canonicalBytes() -> [UInt8] { json.canonicalBytes() }

    /// Decodes a taint event, checking every field's type.
    /// - Throws: `ModelError` naming the bad field.
    public init(json: JSON) throws {
        guard json["schema"]?.string == Self.schema else {
            throw ModelError("not a taint event (schema \(json["schema"]?.string ?? "missing"))")
        }
        let f = FieldReader(json: json, document: "taint event")
        guard let seq = json["seq"]?.int, seq > 0, seq < Int64(Int32.max) else { throw ModelError("taint event seq is missing or not positive") }
        self.seq = Int(seq)
        guard let p = json["previous"] else { throw ModelError("taint event field 'previous' is missing") }
        previous = p.isNull ? nil : try f.id("previous")
        actor = try f.string("actor")
        time = try f.string("time")
        guard let action = Action(rawValue: try f.string("action")) else { throw ModelError("taint event action is unknown") }
        self.action = action
        id = try f.id("id")
        ref = try f.string("ref")
        message = try f.string("message")
        guard let list = json["state"]?.array else { throw ModelError("taint event has no state list") }
        var state: [ObjectID: Taint] = [:]
        for t in try list.map(Taint.init(json:)) { state[t.id] = t }
        self.state = state
    }
}
