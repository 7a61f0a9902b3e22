import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The registry's event index in `.mlv/index.sqlite`: the rolled-back-head check of
/// `audit --verify` and the `--at` answers it serves, with and without the index.
@Suite("event index")
struct EventIndexTests {
    /// `digits` with five events over five days, and `other` with two.
    func history() throws -> (TestRepository, [ObjectID]) {
        let t = try registryRepository()
        let repo = t.repository
        try t.write("other.bin", "other\n")
        _ = try repo.addModel(AddModelRequest(name: "other", path: t.path("other.bin")))
        let day = Timestamp.parse("2026-05-01")!
        var ids: [ObjectID] = []
        repo.clockOverride = day
        ids.append(try repo.promote("digits@v1", to: "production", message: "a").id)
        try repo.promote("other@v1", to: "staging", message: "x")
        repo.clockOverride = day + 86400
        ids.append(try repo.promote("digits@v2", to: "production", message: "b").id)
        repo.clockOverride = day + 2 * 86400
        ids.append(try repo.setAlias("digits@v3", alias: "next").id)
        try repo.promote("other@v1", to: "production", message: "y")
        repo.clockOverride = day + 3 * 86400
        ids.append(try repo.promote("digits@v3", to: "staging", message: "c").id)
        repo.clockOverride = day + 4 * 86400
        ids.append(try repo.promote("digits@v3", to: "production", message: "d").id)
        return (t, ids)
    }

    func moveHead(_ t: TestRepository, _ model: String, to id: ObjectID) throws {
        try Scenario.write(.text(id.hex + "\n"), at: t.repository.storePath + "/refs/model/\(model)/head")
    }

    func removeIndex(_ repo: Repository) {
        for suffix in ["", "-journal", "-wal", "-shm"] { unlink(repo.lineageIndexPath + suffix) }
    }

    @Test func appendedEventsAreIndexedAsTheyAreWritten() throws {
        let (t, ids) = try history()
        let repo = t.repository
        #expect(try repo.verifyChain(model: "digits").isIntact)  // builds the event tables
        let seen = try EventIndex(path: repo.lineageIndexPath).searchedPacks()
        try repo.promote("digits@v1", to: "staging", message: "e")
        // Read without a catch-up: the append itself added the row.
        let index = try EventIndex(path: repo.lineageIndexPath)
        #expect(try index.searchedPacks() == seen)
        #expect(try index.count() == 8)
        #expect(try index.events(of: "digits", after: 4).map(\.seq) == [5, 6])
        #expect(try index.events(of: "digits", after: 0).first?.id == ids[0])
    }

    @Test func aHeadMovedBackIsFoundByTheIndexByTheFullSearchAndWithoutTheIndex() throws {
        let (t, ids) = try history()
        // The index exists and holds every event before the head is moved back.
        #expect(try t.repository.verifyChain(model: "digits").isIntact)
        try moveHead(t, "digits", to: ids[2])
        for full in [false, true] {
            let report = try t.reopen().verifyChain(model: "digits", full: full)
            #expect(report.problem?.contains("moved back") == true, "\(full): \(report.problem ?? "")")
            #expect(report.problem?.contains(ids[3].hex) == true, "\(full): \(report.problem ?? "")")
        }
        // Deleting the derived index does not hide it: the next check searches the packs again.
        removeIndex(t.repository)
        let again = try t.reopen().verifyChains(models: ["digits", "other"])
        #expect(again[0].problem?.contains(ids[3].hex) == true, "\(again[0].problem ?? "")")
        #expect(again[1].isIntact && again[1].events == 2)
        // An index that is not a database is not trusted: the packs are searched instead.
        try Scenario.write(.text("not sqlite\n"), at: t.repository.lineageIndexPath)
        let garbage = try t.reopen().verifyChain(model: "digits")
        #expect(garbage.problem?.contains(ids[3].hex) == true, "\(garbage.problem ?? "")")
        // After reindex the index finds it too.
        removeIndex(t.repository)
        let report = try t.reopen().reindex()
        #expect(report.counts["events"] == 7)
        #expect(try t.reopen().verifyChain(model: "digits").problem?.contains("moved back") == true)
    }

    struct Answer: Equatable {
        var seq: Int
        var state: RegistryState
    }

    @Test func auditAtGivesTheSameAnswersWithAndWithoutTheIndex() throws {
        let (t, _) = try history()
        let models = ["digits", "other"]
        let day = Timestamp.parse("2026-05-01")!
        var times: [Int64] = []
        for d in Int64(-1)...6 { times += [day + d * 86400 - 1, day + d * 86400, day + d * 86400 + 1] }
        func answers(_ repo: Repository) throws -> [Answer] {
            try times.flatMap { time in
                try repo.registryStates(models: models, at: time).map { Answer(seq: $0.seq ?? 0, state: $0.state) }
            }
        }
        func walked(_ repo: Repository) throws -> [Answer] {
            try times.flatMap { time in try models.map { m in
                let r = try repo.registryState(model: m, at: time)
                return Answer(seq: r.event?.seq ?? 0, state: r.state)
            } }
        }
        let repo = try t.reopen()
        let expected = try walked(repo)
        #expect(Set(expected.map(\.seq)) == [0, 1, 2, 3, 4, 5])
        #expect(try answers(repo) == expected)  // index built on first use
        #expect(try answers(try t.reopen()) == expected)  // index reused
        // Without a usable index: every chain is walked.
        try Scenario.write(.text("not sqlite\n"), at: repo.lineageIndexPath)
        #expect(try answers(try t.reopen()) == expected)
        // A head moved back: the events past it are not the chain, so that model is walked.
        removeIndex(repo)
        let ids = Array(try repo.history(model: "digits").map(\.id).reversed())
        try moveHead(t, "digits", to: ids[1])
        let back = try t.reopen()
        #expect(try answers(back) == walked(back))
        #expect(try back.registryStates(models: ["digits"], at: day + 10 * 86400)[0].seq == 2)
    }

    /// Stored summaries carry the head's time, so a time not before a head answers with
    /// the head without asking the events table: the same answers as walking, at the
    /// head's exact time and around it, after another process moved a head, and from
    /// rows without a time (as a row of the earlier schema had).
    @Test func auditAtFromStoredHeadTimesGivesTheWalkedAnswers() throws {
        let (t, _) = try history()
        let models = ["digits", "other"]
        func answers(_ repo: Repository, _ times: [Int64]) throws -> [Answer] {
            try times.flatMap { time in
                try repo.registryStates(models: models, at: time).map { Answer(seq: $0.seq ?? 0, state: $0.state) }
            }
        }
        func walked(_ repo: Repository, _ times: [Int64]) throws -> [Answer] {
            try times.flatMap { time in try models.map { m in
                let r = try repo.registryState(model: m, at: time)
                return Answer(seq: r.event?.seq ?? 0, state: r.state)
            } }
        }
        func headTimes(_ repo: Repository) throws -> [Int64] {
            try models.map { try Timestamp.parse(repo.registryHead(model: $0)!.event.time)! }
        }
        func around(_ times: [Int64]) -> [Int64] { times.flatMap { [$0 - 1, $0, $0 + 1] } + [Timestamp.parse("2100-01-01")!] }
        usleep(80_000)  // past the window in which fresh directories get no row
        let repo = try t.reopen()
        _ = try repo.models(manifests: false)  // stores the rows
        var stored: [Int64] = []
        try SQLiteDatabase(path: repo.lineageIndexPath).prepare("SELECT head_time FROM model_summaries ORDER BY name")
            .forEachRow { stored.append($0.int(0)) }
        #expect(stored == (try headTimes(repo)))
        var times = around(try headTimes(repo))
        #expect(try answers(try t.reopen(), times) == walked(repo, times))
        // Another process moves a head later: its row is stale and read again.
        let other = try t.reopen()
        other.clockOverride = Timestamp.parse("2026-05-20")!
        try other.promote("digits@v1", to: "staging", message: "later")
        times = around(try headTimes(repo))
        #expect(try answers(try t.reopen(), times) == walked(try t.reopen(), times))
        // Rows without a head time: the events table answers for every model.
        usleep(80_000)
        _ = try t.reopen().models(manifests: false)
        try SQLiteDatabase(path: repo.lineageIndexPath).execute("UPDATE model_summaries SET head_time = NULL")
        #expect(try answers(try t.reopen(), times) == walked(try t.reopen(), times))
    }
}

/// `event_chains` is kept as rows are added; it must always say what grouping the
/// `events` table says, including after a head moved back and a fork at the same seq.
@Suite("event index chain counts")
struct EventChainCountTests {
    func grouped(_ index: EventIndex) throws -> [String] {
        var out: [String] = []
        try index.db.prepare("SELECT chain, count(*), count(DISTINCT seq), max(seq), id FROM events GROUP BY chain ORDER BY chain")
            .forEachRow { out.append("\($0.text(0)!) \($0.int(1)) \($0.int(2)) \($0.int(3)) \($0.text(4)!)") }
        return out
    }

    func kept(_ index: EventIndex) throws -> [String] {
        var out: [String] = []
        try index.db.prepare("SELECT chain, count, seqs, top, top_id FROM event_chains ORDER BY chain")
            .forEachRow { out.append("\($0.text(0)!) \($0.int(1)) \($0.int(2)) \($0.int(3)) \($0.text(4)!)") }
        return out
    }

    @Test func chainCountsMatchTheEventsTable() throws {
        let (t, ids) = try EventIndexTests().history()
        let repo = t.repository
        #expect(try repo.verifyChain(model: "digits").isIntact)  // catch-up over every pack
        var index = try EventIndex(path: repo.lineageIndexPath)
        #expect(try kept(index) == grouped(index) && kept(index).count == 2)
        try repo.promote("digits@v1", to: "staging", message: "appended")  // one row added after the head moves
        try index.db.transaction { try index.add(ids[0], try repo.event(ids[0])) }  // again: counted once
        index = try EventIndex(path: repo.lineageIndexPath)
        #expect(try kept(index) == grouped(index))
        #expect(try kept(index).first?.hasPrefix("digits 6 6 6 ") == true)
        // A head moved back, then a new event: two events share a seq.
        try EventIndexTests().moveHead(t, "digits", to: ids[2])
        try t.reopen().promote("digits@v2", to: "staging", message: "fork")
        _ = try t.reopen().verifyChain(model: "digits")
        index = try EventIndex(path: repo.lineageIndexPath)
        #expect(try kept(index) == grouped(index))
        #expect(try kept(index).first?.hasPrefix("digits 7 6 6 ") == true)
    }
}
