import MLVBasics
@testable import MLVCommands
import MLVKit
import MLVModel
import Testing

/// `mlv audit`'s text, rendered into bytes from an `AuditTrail`, is what the earlier
/// String rendering of the events printed, for every action and odd text.
@Suite("audit rendering")
struct AuditRenderTests {
    /// The rendering `mlv audit` used before trails (kept here as the reference).
    func reference(_ m: String, _ events: [(id: ObjectID, event: Event)]) -> String {
        if events.isEmpty { return "\(m): no registry events\n" }
        func describe(_ e: Event) -> String {
            switch e.action {
            case .approve: return "approve v\(e.version) for \(e.stage ?? "?")"
            case .promote: return "promote v\(e.version) to \(e.stage ?? "?")" + (e.forced ? " FORCED (\(e.reason ?? "no reason"))" : "")
            case .aliasSet: return "alias \(e.alias ?? "?") -> v\(e.version)"
            case .aliasRemove: return "alias \(e.alias ?? "?") removed (was v\(e.version))"
            }
        }
        var text = ""
        for (id, e) in events {
            text += "\(m) #\(e.seq)  \(e.time)  \(e.actor)  \(describe(e))  \(id.short)\n"
            if !e.message.isEmpty { text += "    \(e.message)\n" }
            for a in e.approvals { text += "    approved by \(a.actor) at \(a.time)" + (a.message.isEmpty ? "" : ": \(a.message)") + "\n" }
        }
        return text
    }

    @Test func trailsRenderAsTheEventsDid() throws {
        let v = SHA256.hash(Array("v".utf8))
        let odd = ["", "plain", "said \"ok\"\nsecond line", "ünïcødé ✓ 🧪", "tab\there", "e\u{301}", "nul\u{0}byte"]
        var events: [(id: ObjectID, event: Event)] = []
        var seq = 0
        for action in Event.Action.allCases {
            for (k, text) in odd.enumerated() {
                seq += 1
                let approvals = (0..<(k % 3)).map {
                    Approval(version: k + 1, stage: "production", actor: odd[($0 + k) % odd.count], time: "2026-05-0\($0 + 1)T00:00:00Z",
                             message: odd[($0 + 2 * k) % odd.count])
                }
                let e = Event(model: "digits", seq: seq, previous: nil, actor: odd[(k + 1) % odd.count],
                              time: k == 3 ? "not a time" : "2026-05-01T12:00:0\(k)Z", action: action, version: k + 1, id: v,
                              stage: k % 2 == 0 ? "production" : nil, alias: k % 3 == 0 ? "champion" : nil, message: text,
                              approvals: approvals, forced: k % 2 == 1, reason: k == 1 ? nil : odd[k], state: RegistryState())
                events.append((SHA256.hash(e.canonicalBytes()), e))
            }
        }
        events.reverse()
        // A small reserve, so the buffer grows while rendering.
        let sink = AuditSink(reserve: 16)
        sink.add(0, .success(AuditTrail(model: "digits", events: events)))
        sink.add(1, .success(AuditTrail(model: "quiet", events: [])))
        #expect(Array(sink.bytes) == Array((reference("digits", events) + "quiet: no registry events\n").utf8))
        #expect(sink.placed.map(\.position) == [0, 1] && sink.placed.allSatisfy { $0.error == nil })
    }
}
