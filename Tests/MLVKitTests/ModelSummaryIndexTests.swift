import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The per-model summaries `mlv models`, `mlv registry` and `mlv audit --at` read from
/// `.mlv/index.sqlite`: the same answers as reading the refs and head events, and never
/// a stale row (each case below changes the truth behind a cached row).
@Suite("model summary index")
struct ModelSummaryIndexTests {
    /// What a summary says, comparable.
    struct Answer: Equatable, CustomStringConvertible {
        var name: String
        var latest: Int
        var latestID: ObjectID
        var versions: Int
        var state: RegistryState
        var head: ObjectID?
        var description: String { "\(name)@v\(latest)/\(versions) head \(head?.short ?? "-") \(state)" }
    }

    /// The answers read straight from the refs and head events, without the index.
    func uncached(_ repo: Repository) throws -> [Answer] {
        try repo.modelNames().compactMap { name in
            guard let last = try repo.refs.latestVersion(kind: "model", name: name) else { return nil }
            let head = try repo.registryHead(model: name)
            return Answer(name: name, latest: last.number, latestID: last.id, versions: last.count,
                          state: head?.event.state ?? RegistryState(), head: head?.id)
        }
    }

    func answers(_ repo: Repository) throws -> [Answer] {
        try repo.models(manifests: false).map {
            Answer(name: $0.name, latest: $0.latest, latestID: $0.latestID, versions: $0.versions, state: $0.state, head: $0.head)
        }
    }

    /// Waits out the window in which a just-changed directory is not trusted, so the
    /// next listing stores (or serves) rows instead of reading every model afresh.
    func settle() { usleep(80_000) }

    func rowCount(_ repo: Repository) throws -> Int { try ModelSummaryIndex(path: repo.lineageIndexPath).count() }

    /// `digits` v1..v3 with stages, an alias, a pending approval and a forced promotion of
    /// a tainted version; `other` with one version and no events; `third` with one event.
    func store() throws -> TestRepository {
        let t = try registryRepository()
        let repo = t.repository
        for name in ["other", "third"] {
            try t.write("\(name).bin", .text(name + "\n"))
            _ = try repo.addModel(AddModelRequest(name: name, path: t.path("\(name).bin")))
        }
        try repo.promote("digits@v1", to: "production", message: "first")
        try repo.promote("digits@v2", to: "production", message: "better")
        try repo.setAlias("digits@v2", alias: "champion")
        try repo.approve("digits@v3", for: "production", message: "looks good", actor: "ann")
        try repo.taint("digits@v1", reason: "leaked eval set")
        try repo.promote("digits@v1", to: "staging", message: "needed for a rollback drill", force: true)
        try repo.promote("third@v1", to: "staging", message: "try")
        return t
    }

    @Test func summariesAnswerAsTheRefsAndEventsDoAndAreStored() throws {
        let t = try store()
        settle()
        let expected = try uncached(t.repository)
        #expect(expected.count == 3)
        let digits = expected[0].state
        #expect(digits.stages["staging"]?.map(\.version) == [1] && digits.stages["production"]?.map(\.version) == [2])
        #expect(digits.aliases["champion"]?.version == 2 && digits.pending.map(\.actor) == ["ann"])
        #expect(expected[1].head == nil && expected[2].state.stages["staging"]?.count == 1)
        #expect(try answers(t.repository) == expected)  // read afresh, then stored
        #expect(try rowCount(t.repository) == 3)
        #expect(try answers(t.reopen()) == expected)  // served from the rows
        // audit --at after every event: the rows' head states, no event read.
        let late = try t.reopen().registryStates(models: ["digits", "other", "third"], at: Timestamp.parse("2100-01-01")!)
        #expect(late.map(\.state) == expected.map(\.state))
        #expect(late.map(\.seq) == (try ["digits", "other", "third"].map { try t.repository.registryHead(model: $0)?.event.seq }))
        #expect(try t.reopen().models(only: "digits", manifests: false).first?.state == expected[0].state)
        // The manifests, when asked for, are the latest versions'.
        let withManifests = try t.reopen().models()
        #expect(withManifests.map { $0.manifest?.message } == ["v3", "", ""])
    }

    @Test func aPromotionByAnotherProcessIsSeen() throws {
        let t = try store()
        settle()
        _ = try answers(t.repository)
        #expect(try rowCount(t.repository) == 3)
        try t.reopen().promote("digits@v3", to: "production", message: "ship", actor: "bob")
        let now = try answers(t.repository)
        #expect(now == (try uncached(t.repository)))
        #expect(now[0].state.stages["production"]?.map(\.version) == [3])
        // audit --at a time after every event answers with the new head's state.
        let head = try t.repository.registryHead(model: "digits")!
        let late = try t.repository.registryStates(models: ["digits"], at: Timestamp.parse("2100-01-01")!)[0]
        #expect(late.seq == head.event.seq && late.state == head.event.state)
    }

    @Test func aNewVersionIsSeen() throws {
        let t = try store()
        settle()
        _ = try answers(t.repository)
        try t.write("out/model.bin", .random(seed: 99, count: 2000))
        _ = try t.reopen().addModel(AddModelRequest(name: "digits", path: t.path("out/model.bin")))
        settle()  // past the racy window: only the directory signature can tell
        let now = try answers(t.repository)
        #expect(now[0].latest == 4 && now[0].versions == 4)
        #expect(now == (try uncached(t.repository)))
        // A version ref removed by hand is seen too.
        t.remove(".mlv/refs/model/digits/versions/4")
        settle()
        #expect(try answers(t.repository)[0].latest == 3)
    }

    @Test func aDeletedIndexChangesNoAnswer() throws {
        let t = try store()
        settle()
        let expected = try answers(t.repository)
        for suffix in ["", "-journal"] { unlink(t.repository.lineageIndexPath + suffix) }
        #expect(try answers(t.reopen()) == expected)
        #expect(try rowCount(t.repository) == 3)
        // A row that does not decode is read afresh, not served.
        let db = try SQLiteDatabase(path: t.repository.lineageIndexPath)
        try db.execute("UPDATE model_summaries SET state = x'01ff'")
        #expect(try answers(t.reopen()) == expected)
        // `mlv reindex` empties the rows; the next listing stores them again.
        try t.reopen().reindex()
        #expect(try rowCount(t.repository) == 0)
        #expect(try answers(t.reopen()) == expected)
        #expect(try rowCount(t.repository) == 3)
    }

    @Test func aHeadMovedBackByHandIsSeen() throws {
        let t = try store()
        settle()
        let history = try t.repository.history(model: "digits")
        _ = try answers(t.repository)
        // Written in place, as an editor or `echo` would: the directory does not change.
        try Scenario.write(.text(history[2].id.hex + "\n"), at: t.repository.storePath + "/refs/model/digits/head")
        let now = try answers(t.repository)
        #expect(now[0].head == history[2].id && now[0].state == history[2].event.state)
        #expect(now == (try uncached(t.repository)))
        // audit --at after the rollback answers from the chain the head now names.
        let late = Timestamp.parse("2100-01-01")!
        let states = try t.reopen().registryStates(models: ["digits", "other", "third"], at: late)
        #expect(states[0].seq == history[2].event.seq && states[0].state == history[2].event.state)
        #expect(states[1].seq == nil && states[1].state == RegistryState() && states[2].seq == 1)
        // A head removed by hand: no state.
        t.remove(".mlv/refs/model/digits/head")
        #expect(try answers(t.repository)[0].state == RegistryState())
    }

    @Test func theStateEncodingRoundTrips() throws {
        let id = SHA256.hash(Array("x".utf8))
        let h = Holder(version: 300, id: id, since: "2026-05-01T00:00:00Z", by: "zoë@lab")
        let state = RegistryState(stages: ["production": [h], "archived": [h, Holder(version: 1, id: id, since: "", by: "")]],
                                  aliases: ["champion": h, "ünïcode": h],
                                  pending: [Approval(version: 2, stage: "production", actor: "ann", time: "t", message: "ok ✓")])
        let bytes = state.compactBytes()
        #expect(RegistryState(compact: bytes) == state)
        #expect(RegistryState(compact: RegistryState().compactBytes()) == RegistryState())
        for cut in [0, 1, bytes.count / 2, bytes.count - 1] { #expect(RegistryState(compact: Array(bytes[..<cut])) == nil) }
        #expect(RegistryState(compact: bytes + [0]) == nil)
    }
}
