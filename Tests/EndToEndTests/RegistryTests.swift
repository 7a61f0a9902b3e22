import MLVBasics
import MLVModel
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The model registry through the real binary: add, stages, approvals, promotion,
/// aliases, the board, audit (with --at and --verify), and its exit codes.
@Suite("mlv registry end to end")
struct RegistryEndToEndTests {
    /// A store with dataset mnist@v1 (splits train, eval) and model digits v1, v2.
    func store() throws -> Session {
        let s = try Session(identity: "alice@lab")
        try s.mlv("init")
        try s.write("data", ["train/a.csv": "1\n", "eval/b.csv": "2\n"])
        try s.mlv("add", "dataset", "mnist", "data", "--split", "train=train", "--split", "eval=eval")
        for v in 1...2 {
            try s.write("out/model.bin", .random(seed: UInt64(v), count: 5000))
            let r = try s.mlv("add", "model", "digits", "out/model.bin", "-m", "v\(v)", "--meta", "framework=sklearn",
                              "--from", "train=mnist@v1#train", "--from", "eval=mnist@v1#eval")
            #expect(r.lines.first?.hasPrefix("digits@v\(v) ") == true, "\(r)")
        }
        return s
    }

    func expectError(_ s: Session, _ arguments: [String], status: Int32, mentions: [String],
                     environment: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try MLVBinary.run(arguments, in: s.directory, environment: s.environment.merging(environment) { $1 })
        #expect(r.status == status, "\(r)", sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("mlv: error: "), "\(r)", sourceLocation: sourceLocation)
        for m in mentions {
            #expect(r.stderr.contains(m), "stderr does not mention '\(m)': \(r)", sourceLocation: sourceLocation)
        }
    }

    @Test func mainFlow() throws {
        let s = try store()
        try s.mlv("stage", "add", "canary", "--approvals", "1", "--single")
        try s.mlv("stage", "set", "production", "--approvals", "2", "--distinct-approvers")
        let stages = try s.json("stage", "list")
        #expect(stages.array?.count == 4)
        try s.mlv("promote", "model", "digits@v1", "--to", "staging", "-m", "candidate")
        try expectError(s, ["promote", "model", "digits@v1", "--to", "production", "-m", "go"], status: 5,
                        mentions: ["needs 2 approvals", "has 0"])
        try s.mlv("approve", "digits@v1", "--for", "production", "-m", "holdout ok")
        try expectError(s, ["approve", "digits@v1", "--for", "production", "-m", "again"], status: 5, mentions: ["already approved"])
        let bob = try MLVBinary.run(["approve", "digits@v1", "--for", "production", "-m", "ok"], in: s.directory,
                                    environment: ["MLV_IDENTITY": "bob@lab"])
        #expect(bob.status == 0, "\(bob)")
        try expectError(s, ["promote", "model", "digits@v1", "--to", "production", "-m", "go"], status: 5,
                        mentions: ["has 1", "alice@lab", "distinct"])
        let carol = try MLVBinary.run(["approve", "digits@v1", "--for", "production", "-m", "ok"], in: s.directory,
                                      environment: ["MLV_IDENTITY": "carol@lab"])
        #expect(carol.status == 0, "\(carol)")
        try s.mlv("promote", "model", "digits@v1", "--to", "production", "-m", "ship it")
        try s.mlv("stage", "set", "production", "--approvals", "0")
        try s.mlv("promote", "model", "digits@v2", "--to", "production", "-m", "beats v1")
        try s.mlv("alias", "set", "digits@v2", "champion")

        let models = try s.json("models")
        #expect(models.array?.first?["latest"] == .int(2))
        #expect(models.array?.first?["stages"]?["production"] == .array([.int(2)]))
        #expect(models.array?.first?["stages"]?["archived"] == .array([.int(1)]))
        let log = try s.json("log", "model", "digits")
        #expect(log.array?.map { $0["stages"] } == [.array([.string("production")]), .array([.string("archived")])])
        #expect(log.array?.first?["aliases"] == .array([.string("champion")]))
        let board = try s.mlv("registry", "digits")
        #expect(board.stdout.contains("production") && board.stdout.contains("alice@lab") && board.stdout.contains("@champion"))
        #expect(try s.json("show", "digits@production")["ref"]?["version"] == .int(2))
        #expect(try s.json("show", "digits@champion")["ref"]?["version"] == .int(2))
        #expect(try s.json("show", "model:digits@v1")["manifest"]?["meta"]?["framework"] == .string("sklearn"))
        try s.mlv("ls", "digits@archived")
        try s.mlv("diff", "digits@archived", "digits@production")
        try s.mlv("checkout", "digits@production", "--to", "co")
        #expect(try Scenario.read(s.path("co/model.bin")) == Scenario.read(s.path("out/model.bin")))

        let audit = try s.json("audit", "digits")
        #expect(audit.array?.count == 7)
        let promotion = try #require(audit.array?.first { $0["event"]?["message"] == .string("ship it") })
        #expect(promotion["event"]?["approvals"]?.array?.compactMap { $0["actor"]?.string }.sorted() == ["bob@lab", "carol@lab"])
        let production = try s.json("audit", "digits@production")
        // The three approvals for production and the two promotions into it.
        #expect(production.array?.count == 5, "\(production)")
        let at = try s.json("audit", "digits", "--at", "2000-01-01")
        #expect(at.array?.first?["stages"] == .object([:]))
        let now = try s.json("audit", "digits@production", "--at", "2100-01-01T00:00Z")
        #expect(now.array?.first?["stages"]?["production"]?.array?.first?["version"] == .int(2))
        let verify = try s.mlv("audit", "--verify")
        #expect(verify.stdout.contains("digits: 7 events, chain intact"))
        try s.mlv("fsck", "--full")
        try s.mlv("gc", "--grace", "0")
        try s.mlv("audit", "--verify")
        let help = try s.mlv("--help")
        for command in ["models", "registry", "stage", "approve", "promote", "alias", "audit", "compare"] {
            #expect(help.stdout.contains(command), "\(command) missing from --help")
        }
    }

    @Test func badInputExitCodes() throws {
        let s = try store()
        try s.mlv("promote", "model", "digits@v1", "--to", "production", "-m", "x")
        let before = try Scenario.snapshot(s.path(".mlv"))
        try expectError(s, ["promote", "model", "nope@v1", "--to", "production", "-m", "x"], status: 2, mentions: ["nope"])
        try expectError(s, ["promote", "model", "digits@v7", "--to", "production", "-m", "x"], status: 2, mentions: ["digits@v7"])
        try expectError(s, ["promote", "model", "digits@v2", "--to", "prod", "-m", "x"], status: 2, mentions: ["prod"])
        try expectError(s, ["promote", "model", "digits@champion", "--to", "staging", "-m", "x"], status: 2, mentions: ["digits@champion"])
        try expectError(s, ["alias", "remove", "digits", "champion"], status: 2, mentions: ["champion"])
        try expectError(s, ["stage", "remove", "production"], status: 5, mentions: ["production", "digits@v1"])
        try expectError(s, ["stage", "remove", "nope"], status: 2, mentions: ["nope"])
        try expectError(s, ["audit", "digits", "--at", "yesterday"], status: 5, mentions: ["yesterday"])
        try expectError(s, ["audit", "nope"], status: 2, mentions: ["nope"])
        try expectError(s, ["log", "model", "nope"], status: 2, mentions: ["nope"])
        try expectError(s, ["registry", "nope"], status: 2, mentions: ["nope"])
        try expectError(s, ["audit", "digits@prod"], status: 2, mentions: ["prod"])
        try expectError(s, ["approve", "digits@v2", "--for", "nope", "-m", "x"], status: 2, mentions: ["nope"])
        try expectError(s, ["promote", "model", "digits@v2", "--to", "staging", "-m", "x"], status: 5, mentions: ["identity"],
                        environment: ["MLV_IDENTITY": " "])
        #expect(try Scenario.snapshot(s.path(".mlv")) == before)
    }

    /// Two `mlv promote` processes for production, both started while the head's lock is
    /// held so both read the same head: exactly one wins, the other exits 3 naming
    /// production, and the chain holds one new event.
    @Test func twoProcessesPromotingAtOnceExactlyOneWins() throws {
        let s = try store()
        let packs = s.path(".mlv/packs")
        func packFiles() throws -> Set<String> { Set(try Scenario.names(in: packs).filter { $0.hasSuffix(".pack") }) }
        let beforeBase = try packFiles()
        try s.mlv("promote", "model", "digits@v1", "--to", "production", "-m", "base")
        // The base promotion's pack holds the head event (each registry change has its own).
        let headPack = try #require(try packFiles().subtracting(beforeBase).first)
        try s.write("out/model.bin", .random(seed: 3, count: 5000))
        try s.mlv("add", "model", "digits", "out/model.bin")
        let lock = s.path(".mlv/refs/model/digits/head.lock")
        try Scenario.write(.text("held by the test"), at: lock)
        let packsBefore = try packFiles()
        let children = try [2, 3].map { v in
            try MLVBinary.start(["promote", "model", "digits@v\(v)", "--to", "production", "-m", "race"], in: s.directory,
                                environment: s.environment)
        }
        // Release the lock once both have read the head: each keeps the head event's pack open.
        let deadline = monotonicMilliseconds() + 20_000
        while !children.allSatisfy({ hasOpen($0.pid, packs + "/" + headPack) }) && monotonicMilliseconds() < deadline {
            usleep(5_000)
        }
        unlink(lock)
        let results = children.map { $0.wait() }
        #expect(results.filter { $0.status == 0 }.count == 1, "\(results)")
        let loser = try #require(results.first { $0.status != 0 })
        #expect(loser.status == 3, "\(loser)")
        #expect(loser.stderr.contains("digits@production changed since you read it"), "\(loser)")
        #expect(try packFiles().count == packsBefore.count + 1, "the loser wrote nothing")
        let audit = try s.json("audit", "digits")
        #expect(audit.array?.count == 2)
        let production = try s.json("models").array?.first?["stages"]?["production"]
        #expect(production?.array?.count == 1)
        try s.mlv("audit", "--verify")
        try s.mlv("fsck")
    }

    /// Editing stored bytes is caught: the head put back to an older event.
    @Test func verifyFailsWithOneOnAMovedBackHead() throws {
        let s = try store()
        let first = try s.json("promote", "model", "digits@v1", "--to", "production", "-m", "a")
        try s.mlv("promote", "model", "digits@v2", "--to", "production", "-m", "b")
        let id = try #require(first["id"]?.string)
        try Scenario.write(.text(id + "\n"), at: s.path(".mlv/refs/model/digits/head"))
        let r = try s.run(["audit", "--verify"], status: 1)
        #expect(r.stdout.contains("TAMPERED") && r.stdout.contains("moved back"), "\(r)")
    }
}

/// Whether process `pid` has `path` open (Linux: one of `/proc/PID/fd/*` links to it).
func hasOpen(_ pid: pid_t, _ path: String) -> Bool {
    let dir = "/proc/\(pid)/fd"
    guard let fds = try? Scenario.names(in: dir) else { return false }
    return fds.contains { (try? FS.readLink(dir + "/" + $0)) == path }
}
