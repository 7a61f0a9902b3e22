import MLVBasics
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The registry's event index (`events` in `.mlv/index.sqlite`) as processes write it.
@Suite("event index end to end")
struct EventIndexEndToEndTests {
    @Test func eventsAppendedByConcurrentProcessesAreAllIndexedAndAHeadMovedBackIsFound() throws {
        let s = try Session(identity: "alice@lab")
        try s.mlv("init")
        let models = (0..<4).map { "m\($0)" }
        for (i, m) in models.enumerated() {
            try s.write("\(m).bin", .random(seed: UInt64(70 + i), count: 3000))
            try s.mlv("add", "model", m, "\(m).bin")
        }
        try s.mlv("promote", "model", "m0@v1", "--to", "staging", "-m", "first")
        try s.mlv("audit", "--verify")  // builds the event tables: every pack searched once
        let db = try SQLiteDatabase(path: s.path(".mlv/index.sqlite"))
        func rows(_ sql: String) throws -> [String] {
            var out: [String] = []
            try db.prepare(sql).forEachRow { out.append($0.text(0) ?? "") }
            return out
        }
        let searched = try rows("SELECT name FROM event_packs ORDER BY name")
        #expect(try rows("SELECT count(*) FROM events") == ["1"])

        var commands: [[String]] = []
        for m in models.dropFirst() {
            commands.append(["promote", "model", "\(m)@v1", "--to", "staging", "-m", "go"])
            commands.append(["alias", "set", "\(m)@v1", "champion"])
        }
        for who in ["bob@lab", "carol@lab", "dan@lab"] { commands.append(["approve", "m0@v1", "--for", "production", "-m", who]) }
        let children = try commands.enumerated().map { i, c in
            try MLVBinary.start(c, in: s.directory, environment: s.environment.merging(["MLV_IDENTITY": "p\(i)@lab"]) { $1 })
        }
        var won = 0
        for r in children.map({ $0.wait() }) {
            #expect(!r.timedOut && (r.status == 0 || r.status == 3), "\(r)")
            if r.status == 0 { won += 1 }
        }
        #expect(won >= models.count - 1)
        // Every event written is in the index, put there by the process that wrote it:
        // no query has searched the new packs yet.
        #expect(try rows("SELECT name FROM event_packs ORDER BY name") == searched)
        var total = 0
        for m in models { total += try #require(try s.json("audit", m).array).count }
        #expect(total == 1 + won)
        #expect(try rows("SELECT count(*) FROM events") == ["\(total)"])
        try s.mlv("audit", "--verify")

        // Move m0's head back by hand; the index and the full search both name it; deleting
        // the index does not hide it.
        let ids = try rows("SELECT id FROM events WHERE chain = 'm0' ORDER BY seq")
        try #require(ids.count >= 2)
        try s.write(".mlv/refs/model/m0/head", .text(ids[0] + "\n"))
        for extra in [[], ["--full"]] {
            let r = try s.run(["audit", "m0", "--verify"] + extra, status: 1)
            #expect(r.stdout.contains("moved back") && r.stdout.contains(ids[1]), "\(r)")
        }
        let r = try s.run(["audit", "--full"], status: 64)
        #expect(r.stderr.contains("--full goes with --verify"), "\(r)")
        unlink(s.path(".mlv/index.sqlite"))
        let again = try s.run(["audit", "--verify"], status: 1)
        #expect(again.stdout.contains("m0: TAMPERED") && again.stdout.contains(ids[1]), "\(again)")
    }

    @Test func auditPrintsTheSameWithTheIndexWithoutItAndWithRowsGone() throws {
        let s = try Session(identity: "zoë <z@lab>")
        try s.mlv("init")
        for m in ["a", "b", "c"] {
            try s.write("\(m).bin", .random(seed: UInt64(m.utf8.first!), count: 2000))
            try s.mlv("add", "model", m, "\(m).bin")
        }
        try s.mlv("stage", "set", "production", "--approvals", "1")
        try s.mlv("approve", "a@v1", "--for", "production", "-m", "said \"ok\"\nsecond line ✓")
        try s.mlv("promote", "model", "a@v1", "--to", "production", "-m", "tab\there")
        try s.mlv("alias", "set", "b@v1", "champion", "-m", "")
        try s.mlv("alias", "remove", "b", "champion")
        let all = try s.mlv("audit").stdout, one = try s.mlv("audit", "a").stdout
        #expect(all.contains("approved by zoë <z@lab> at ") && all.contains("c: no registry events\n"))
        let index = s.path(".mlv/index.sqlite")
        #expect(try SQLiteDatabase(path: index).prepare("SELECT count(*) FROM events").step())
        try SQLiteDatabase(path: index).execute("DELETE FROM events WHERE chain = 'a' AND seq = 1")
        #expect(try s.mlv("audit").stdout == all)
        for suffix in ["", "-journal"] { unlink(index + suffix) }
        #expect(try s.mlv("audit").stdout == all)
        #expect(try s.mlv("audit", "a").stdout == one)
    }
}
