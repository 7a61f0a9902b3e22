import MLVModel
import MLVTestSupport
import Testing

@Suite("mlv processes at once")
struct ConcurrentProcessTests {
    /// Two `mlv add` processes started together on one store: both succeed, one gets v1
    /// and the other v2, and the store stays clean.
    @Test func twoAddsOfTheSameDatasetAtOnce() throws {
        let s = try Session()
        try s.mlv("init")
        try s.write("one", ["a.bin": .random(seed: 1, count: 400_000), "x.txt": "one\n"])
        try s.write("two", ["a.bin": .random(seed: 2, count: 400_000), "x.txt": "two\n"])
        let children = try ["one", "two"].map { dir in
            try MLVBinary.start(["add", "dataset", "mnist", dir], in: s.directory, environment: s.environment)
        }
        let results = children.map { $0.wait() }
        let succeeded = results.filter { $0.status == 0 }
        for r in results {
            #expect(r.status == 0 && !r.timedOut && r.stderr.isEmpty, "\(r)")
        }
        #expect(!succeeded.isEmpty)
        let versions = succeeded.compactMap { $0.lines.first?.split(separator: " ").first.map(String.init) }
        #expect(Set(versions) == Set((1...max(1, succeeded.count)).map { "mnist@v\($0)" }))
        // Whatever happened, the store is intact and each version holds what its process added.
        try s.mlv("fsck", "--full")
        #expect(try s.json("log", "dataset", "mnist").array?.count == succeeded.count)
        for (r, dir) in zip(results, ["one", "two"]) where r.status == 0 {
            let version = try #require(r.lines.first?.split(separator: " ").first.map(String.init))
            try s.mlv("checkout", version, "--to", "out-" + dir)
            #expect(try Scenario.snapshot(s.path("out-" + dir)) == Scenario.snapshot(s.path(dir)))
        }
    }

    /// gc (which takes the store's lock exclusively) and add at once: neither loses data.
    @Test func gcAndAddAtOnce() throws {
        let s = try Session()
        try s.mlv("init")
        try s.write("one", ["a.bin": .random(seed: 3, count: 300_000)])
        try s.mlv("add", "dataset", "first", "one")
        try s.write("two", ["b.bin": .random(seed: 4, count: 300_000)])
        let add = try MLVBinary.start(["add", "dataset", "second", "two"], in: s.directory, environment: s.environment)
        let gc = try MLVBinary.start(["gc", "--grace", "0"], in: s.directory, environment: s.environment)
        let (a, g) = (add.wait(), gc.wait())
        #expect(a.status == 0, "\(a)")
        #expect(g.status == 0, "\(g)")
        try s.mlv("fsck", "--full")
        try s.mlv("checkout", "second", "--to", "out")
        #expect(try Scenario.snapshot(s.path("out")) == Scenario.snapshot(s.path("two")))
    }

    /// Adds, promotions and gc, all at once, as separate processes on one store: every
    /// add lands and reads back, every promotion either lands or is refused as a lost race
    /// (never half), the audit chain holds exactly one event per promotion that landed and
    /// verifies, and fsck finds nothing wrong.
    @Test func addsPromotionsAndGCAtOnce() throws {
        let s = try Session()
        try s.mlv("init")
        for v in 1...4 {
            try s.write("m\(v)/model.bin", .random(seed: UInt64(40 + v), count: 20_000))
            try s.mlv("add", "model", "digits", "m\(v)/model.bin")
        }
        try s.mlv("promote", "model", "digits@v1", "--to", "staging", "-m", "base")
        try s.write("junk", ["j.bin": .random(seed: 50, count: 200_000)])
        try s.mlv("add", "dataset", "junk", "junk")
        Scenario.removeTree(s.path(".mlv/refs/dataset/junk"))
        for i in 0..<3 {
            try s.write("d\(i)", ["a.bin": .random(seed: UInt64(60 + i), count: 400_000), "n.txt": .text("\(i)\n")])
        }

        var commands: [[String]] = []
        for i in 0..<3 { commands.append(["add", "dataset", "d\(i)", "d\(i)"]) }
        for v in 2...4 { commands.append(["promote", "model", "digits@v\(v)", "--to", "production", "-m", "race \(v)"]) }
        commands.append(["promote", "model", "digits@v1", "--to", "archived", "-m", "race 1"])
        commands.append(["gc", "--grace", "0"])
        commands.append(["gc", "--grace", "0"])
        let children = try commands.map { try MLVBinary.start($0, in: s.directory, environment: s.environment) }
        let results = children.map { $0.wait() }

        var promoted: [Int] = []
        for (command, r) in zip(commands, results) {
            #expect(!r.timedOut, "\(r)")
            switch command[0] {
            case "add", "gc":
                #expect(r.status == 0, "\(r)")
            default:
                #expect(r.status == 0 || r.status == 3, "\(r)")
                if r.status == 3 { #expect(r.stderr.contains("changed since you read it"), "\(r)") }
                if r.status == 0 { promoted.append(Int(command[2].dropFirst("digits@v".count))!) }
            }
        }
        #expect(!promoted.isEmpty)
        try s.mlv("fsck", "--full")
        try s.mlv("audit", "--verify")
        let events = try #require(try s.json("audit", "digits").array)
        #expect(events.count == 1 + promoted.count, "one event per successful promotion: \(events.count) events, \(promoted)")
        let versions = events.dropLast().compactMap { $0["event"]?["version"]?.int.map(Int.init) }
        #expect(Set(versions) == Set(promoted) && versions.count == promoted.count)
        for i in 0..<3 {
            try s.mlv("checkout", "d\(i)", "--to", "out\(i)")
            #expect(try Scenario.snapshot(s.path("out\(i)")) == Scenario.snapshot(s.path("d\(i)")))
        }
    }

    /// Rounds of adds (some re-adding the content of datasets whose refs were removed),
    /// two `gc --grace 0`, lineage queries and checkouts, all at once as processes. gc
    /// deletes packs under processes that opened the store before it ran: none may fail
    /// (an add once exited 1 with "open ...idx: No such file or directory"), and no add
    /// may commit a version whose objects gc deleted. One round by default,
    /// `MLV_LONG_TESTS=1` for twenty.
    @Test func addsGCAndQueriesWhileGCDeletesPacks() throws {
        for round in 0..<(longTests ? 20 : 1) {
            let s = try Session()
            try s.mlv("init")
            for i in 0..<4 {
                try s.write("junk\(i)", ["j.bin": .random(seed: UInt64(round * 100 + i), count: 120_000)])
                try s.mlv("add", "dataset", "junk\(i)", "junk\(i)")
            }
            try s.write("keep", ["k.bin": .random(seed: UInt64(round * 100 + 50), count: 50_000)])
            try s.mlv("add", "dataset", "keep", "keep")
            try s.mlv("lineage", "keep")  // builds the lineage index
            for i in 0..<4 { Scenario.removeTree(s.path(".mlv/refs/dataset/junk\(i)")) }
            for i in 0..<2 {
                try s.write("new\(i)", ["a.bin": .random(seed: UInt64(round * 100 + 60 + i), count: 150_000)])
            }

            var commands: [[String]] = []
            for i in 0..<2 { commands.append(["add", "dataset", "new\(i)", "new\(i)"]) }
            for i in 0..<2 { commands.append(["add", "dataset", "again\(i)", "junk\(i)"]) }
            commands.append(["gc", "--grace", "0"])
            commands.append(["gc", "--grace", "0"])
            commands.append(["lineage", "keep"])
            commands.append(["checkout", "keep", "--to", "out-keep"])
            let children = try commands.map { try MLVBinary.start($0, in: s.directory, environment: s.environment) }
            for (command, r) in zip(commands, children.map { $0.wait() }) {
                #expect(r.status == 0 && !r.timedOut && r.stderr.isEmpty, "round \(round), \(command): \(r)")
            }
            try s.mlv("fsck", "--full")
            for (version, source) in [("new0", "new0"), ("new1", "new1"), ("again0", "junk0"), ("again1", "junk1")] {
                try s.mlv("checkout", version, "--to", "out-" + version)
                #expect(try Scenario.snapshot(s.path("out-" + version)) == Scenario.snapshot(s.path(source)), "round \(round)")
            }
        }
    }
}
