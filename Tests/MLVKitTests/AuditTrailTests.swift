import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `Repository.auditTrails`: every model's history served from the event index, equal to
/// the walk of the event objects, and read from the objects wherever the index does not
/// hold a whole chain.
@Suite("audit trails")
struct AuditTrailTests {
    /// `digits` (approvals, a forced promotion of a tainted version, aliases set and
    /// removed, odd messages), `other` (one event, an empty message) and `quiet` (no events).
    func registry() throws -> TestRepository {
        let t = try registryRepository()
        let repo = t.repository
        for name in ["other", "quiet"] {
            try t.write("\(name).bin", .text("\(name)\n"))
            _ = try repo.addModel(AddModelRequest(name: name, path: t.path("\(name).bin")))
        }
        try repo.setStage("production", approvals: 2, single: nil, distinctApprovers: true)
        _ = try repo.approve("digits@v1", for: "production", message: "said \"ok\"\nsecond line", actor: "zoë@lab")
        try repo.approve("digits@v1", for: "production", message: "", actor: "bob@lab")
        try repo.promote("digits@v1", to: "production", message: "ünïcødé ✓ \u{1F9EA}", actor: "carol@lab")
        try repo.setAlias("digits@v2", alias: "champion", message: "tab\there")
        _ = try repo.taint("mnist@v1", reason: "labels shifted \"by one\"")
        try repo.promote("digits@v2", to: "staging", message: "needed anyway", force: true)
        try repo.removeAlias(model: "digits", alias: "champion")
        try repo.promote("other@v1", to: "staging", message: "")
        return t
    }

    func walked(_ repo: Repository, _ models: [String]) throws -> [AuditTrail] {
        try models.map { AuditTrail(model: $0, events: try repo.history(model: $0)) }
    }

    func trails(_ repo: Repository, _ models: [String]) throws -> [AuditTrail] {
        try repo.auditTrails(models: models).map { try $0.get() }
    }

    func indexSQL(_ repo: Repository, _ sql: String) throws {
        try SQLiteDatabase(path: repo.lineageIndexPath).execute(sql)
    }

    @Test func indexServedTrailsEqualTheWalkOfTheObjects() throws {
        let t = try registry()
        let repo = t.repository
        let models = try repo.modelNames()
        #expect(models == ["digits", "other", "quiet"])
        let served = try trails(repo, models)
        #expect(served.allSatisfy { $0.fromIndex })
        #expect(try served == walked(repo, models))
        #expect(served.map(\.count) == [6, 1, 0])
        // Every field reads back as the event holds it.
        let history = try repo.history(model: "digits")
        var n = 0
        try served[0].forEach { view in
            let (id, e) = history[n]
            func s(_ b: UnsafeRawBufferPointer?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }
            #expect(view.seq == e.seq && s(view.idHex) == id.hex && s(view.actor) == e.actor && s(view.time) == e.time)
            #expect(view.action == e.action && view.version == e.version && s(view.stage) == e.stage && s(view.alias) == e.alias)
            #expect(s(view.message) == e.message && view.forced == e.forced && s(view.reason) == e.reason)
            var approvals: [Approval] = []
            view.forEachApproval {
                approvals.append(Approval(version: $0.version, stage: s($0.stage)!, actor: s($0.actor)!, time: s($0.time)!,
                                          message: s($0.message)!))
            }
            #expect(approvals == e.approvals && view.approvalCount == e.approvals.count)
            n += 1
        }
        #expect(n == 6)
        #expect(history.contains { $0.event.forced && $0.event.reason?.contains("\"by one\"") == true })
        #expect(history.contains { $0.event.approvals.count == 2 })
        // A few models are read by one query each, many by the passes over every row.
        #expect(try trails(repo, ["other"]) == [served[1]])
        let many = (0..<65).map { "m\($0)" }
        for name in many {
            try t.write("\(name).bin", .text("\(name)\n"))
            _ = try repo.addModel(AddModelRequest(name: name, path: t.path("\(name).bin")))
            try repo.setAlias("\(name)@v1", alias: "a")
        }
        let all = try repo.modelNames()
        let allServed = try trails(repo, all)
        #expect(allServed.allSatisfy { $0.fromIndex })
        #expect(try allServed == walked(repo, all))
    }

    @Test func aChainTheIndexDoesNotHoldWholeIsReadFromTheObjects() throws {
        let t = try registry()
        let repo = t.repository
        let models = try repo.modelNames()
        let truth = try walked(repo, models)
        #expect(try trails(repo, models).allSatisfy(\.fromIndex))
        let edits = [
            "DELETE FROM events WHERE chain = 'digits' AND seq = 3",
            "UPDATE events SET previous = NULL WHERE chain = 'digits' AND seq = 5",
            "UPDATE events SET previous = id WHERE chain = 'digits' AND seq = 5",
            "UPDATE events SET seq = 9 WHERE chain = 'digits' AND seq = 1",
            "UPDATE events SET listing = x'01' WHERE chain = 'digits' AND seq = 2",
            "UPDATE events SET listing = x'02' || substr(listing, 2) WHERE chain = 'digits' AND seq = 2",
            "UPDATE events SET id = 'x' WHERE chain = 'digits' AND seq = 6",
            "UPDATE events SET chain = 'other' WHERE chain = 'digits'",
        ]
        for sql in edits {
            let saved = try FS.readFile(repo.lineageIndexPath)
            try indexSQL(repo, sql)
            let shown = try trails(repo, models)
            #expect(shown == truth, "\(sql)")
            #expect(shown.map(\.fromIndex) == [false, true, true], "\(sql)")
            try FS.atomicWrite(repo.lineageIndexPath, saved, durable: false)
        }
        // A head moved back: the older chain is whole in the index, and shown as such.
        let older = try repo.history(model: "digits")[2].id
        try Scenario.write(.text(older.hex + "\n"), at: repo.storePath + "/refs/model/digits/head")
        let back = try trails(repo, ["digits", "other"])
        #expect(back[0].fromIndex && back[0].count == 4)
        #expect(try back == walked(repo, ["digits", "other"]))
    }

    /// A row whose listing is valid but not its event's (an edited or stale index) is what
    /// plain `audit` shows, so `--verify` compares every row of an intact chain with the
    /// event and names the first that differs; `reindex` puts it right.
    @Test func verifyNamesAnIndexRowThatDiffersFromItsEvent() throws {
        let t = try registry()
        let repo = t.repository
        let models = try repo.modelNames()
        #expect(try repo.verifyChains(models: models).allSatisfy(\.isIntact))
        let seq2 = try repo.history(model: "digits").first { $0.event.seq == 2 }!.id
        try indexSQL(repo, "UPDATE events SET listing = (SELECT listing FROM events WHERE chain = 'digits' AND seq = 3) WHERE chain = 'digits' AND seq = 2")
        #expect(try trails(repo, ["digits"]) != walked(repo, ["digits"]), "plain audit shows the edited row")
        for full in [false, true] {
            let report = try repo.verifyChain(model: "digits", full: full)
            #expect(!report.isIntact)
            #expect(report.problem?.contains("event index's row for event seq 2 (\(seq2.hex))") == true, "\(report)")
            #expect(report.problem?.contains("mlv reindex") == true)
        }
        #expect(try repo.verifyChains(models: models).filter { !$0.isIntact }.map(\.model) == ["digits"])
        _ = try repo.reindex()
        #expect(try repo.verifyChains(models: models).allSatisfy(\.isIntact))
        #expect(try trails(repo, models) == walked(repo, models))
    }

    @Test func deletingOrLosingTheIndexChangesNoTrail() throws {
        let t = try registry()
        let repo = t.repository
        let models = try repo.modelNames()
        let before = try trails(repo, models)
        for suffix in ["", "-journal"] { unlink(repo.lineageIndexPath + suffix) }
        let rebuilt = try trails(repo, models)
        #expect(rebuilt == before && rebuilt.allSatisfy(\.fromIndex))
        // An index that cannot be opened: every chain is walked.
        for suffix in ["", "-journal"] { unlink(repo.lineageIndexPath + suffix) }
        try FS.makeDirectories(repo.lineageIndexPath)
        let walkedAll = try trails(repo, models)
        #expect(walkedAll == before && !walkedAll.contains(where: \.fromIndex))
    }

    @Test func aNameWithNoVersionsFailsAsHistoryDoes() throws {
        let t = try registry()
        let repo = t.repository
        try FS.makeDirectories(repo.storePath + "/refs/model/ghost/versions")
        let results = repo.auditTrails(models: ["digits", "ghost"])
        #expect((try? results[0].get())?.count == 6)
        #expect(throws: MLVError.self) { try results[1].get() }
    }
}
