import MLVBasics
import MLVModel
import MLVTestSupport
import Testing

/// Remotes through the real binary, with a directory remote: remote add/list/remove,
/// push, clone, pull with a renumbered version, a moved stage, status --remote, a lazy
/// clone's checkout, and the exit codes.
@Suite("mlv remotes end to end")
struct RemoteEndToEndTests {
    /// A registry changed on both sides: `pull` reports it (exit 3); `pull
    /// --rebase-registry` killed after staging the re-applied events, before the head
    /// moves, changes nothing (the head and fsck; the lock is cleared by `unlock`); run
    /// again, it puts ours on top of theirs, the chain verifies and the result pushes.
    @Test func aRegistryRebaseKilledBeforeTheHeadMovesChangesNothing() throws {
        let s = try Session(identity: "alice@lab")
        try s.write("a/m.bin", .random(seed: 40, count: 5000))
        try s.run(["init", "a"])
        for v in 1...2 {
            try s.write("a/m.bin", .random(seed: UInt64(40 + v), count: 5000))
            try s.mlv("add", "model", "digits", "m.bin", in: "a")
        }
        try s.mlv("promote", "model", "digits@v1", "--to", "production", "-m", "first", in: "a")
        try s.mlv("remote", "add", "origin", s.path("shared"), in: "a")
        try s.mlv("push", in: "a")
        try s.mlv("clone", s.path("shared"), "b")
        try s.mlv("promote", "model", "digits@v2", "--to", "production", "-m", "ship v2", in: "a")
        try s.mlv("push", in: "a")
        try s.mlv("alias", "set", "digits@v1", "champion", in: "b")
        let diverged = try s.mlv("pull", status: 3, in: "b")
        #expect(diverged.stderr.contains("diverged") && diverged.stderr.contains("--rebase-registry"), "\(diverged)")

        let head = s.path("b/.mlv/refs/model/digits/head")
        let before = try Scenario.read(head)
        let killed = try MLVBinary.run(["pull", "--rebase-registry"], in: s.path("b"),
                                       environment: s.environment.merging(["MLV_CRASH_AT": "registry.rebase-staged"]) { $1 })
        #expect(killed.status == killedBySIGKILL, "\(killed)")
        #expect(try Scenario.read(head) == before, "the head did not move")
        // The staged events are stored but named by no head: --verify reports them as it
        // does any event a crash left beyond its head (docs/reliability.md), and the
        // chain itself is sound.
        let verify = try s.mlv("audit", "--verify", status: 1, in: "b")
        #expect(verify.stdout.contains("a change crashed before moving it"), "\(verify)")
        try s.mlv("fsck", in: "b")
        try s.mlv("unlock", in: "b")

        let rebased = try s.mlv("pull", "--rebase-registry", in: "b")
        #expect(rebased.stdout.contains("re-applied model:digits registry"), "\(rebased)")
        let audit = try s.mlv("audit", "digits", in: "b").stdout
        #expect(audit.hasPrefix("digits #3") && audit.contains("alias champion -> v1") && audit.contains("re-applied after pull"), "\(audit)")
        #expect(try s.mlv("audit", "--verify", in: "b").stdout.contains("digits: 3 events, chain intact"))
        try s.mlv("push", in: "b")
        try s.mlv("pull", in: "a")
        #expect(try s.mlv("show", "digits@champion", in: "a").stdout.contains("model digits@v1"))
    }

    @Test func pushCloneAndPullThroughADirectoryRemote() throws {
        let s = try Session(identity: "alice@lab")
        try s.write("a/data", ["x.csv": "1,2\n", "big.bin": .random(seed: 3, count: 200_000)])
        try s.run(["init", "a"])
        try s.mlv("add", "dataset", "mnist", "data", in: "a")
        try s.write("a/m.bin", .random(seed: 4, count: 5000))
        try s.mlv("add", "model", "digits", "m.bin", in: "a")
        try s.mlv("promote", "model", "digits@v1", "--to", "production", "-m", "go", in: "a")

        let added = try s.mlv("remote", "add", "origin", s.path("shared"), in: "a")
        #expect(added.stdout.contains("added remote origin"))
        let listed = try s.run(["remote", "list", "--json"], in: "a")
        #expect(listed.stdout.contains("\"name\":\"origin\""))
        let pushed = try s.mlv("push", in: "a")
        #expect(pushed.stdout.contains("dataset:mnist@v1") && pushed.stdout.contains("model:digits registry"))
        #expect(try s.mlv("push", in: "a").stdout.contains("up to date"))
        #expect(try s.mlv("status", "--remote", in: "a").stdout.contains("in sync with origin"))

        try s.mlv("clone", s.path("shared"), "b")
        #expect(try s.mlv("show", "digits@production", in: "b").stdout.contains("model digits@v1"))
        try s.mlv("checkout", "mnist", "--to", "out", in: "b")
        #expect(try Scenario.snapshot(s.path("b/out")) == Scenario.snapshot(s.path("a/data")))

        // Both make mnist@v2 offline; b pushes first, a's pull renumbers a's to v3.
        try s.write("a/data/y.csv", .text("a\n"))
        try s.write("b/out/y.csv", .text("b\n"))
        try s.mlv("add", "dataset", "mnist", "data", in: "a")
        try s.mlv("add", "dataset", "mnist", "out", in: "b")
        try s.mlv("push", in: "b")
        let refused = try s.mlv("push", status: 3, in: "a")
        #expect(refused.stderr.contains("mnist@v2") && refused.stderr.contains("mlv pull"))
        let status = try s.mlv("status", "--remote", in: "a")
        #expect(status.stdout.contains("dataset:mnist@v2") && status.stdout.contains("differs"))
        let pulled = try s.mlv("pull", in: "a")
        #expect(pulled.stdout.contains("renumbered your dataset:mnist@v2 to v3"), "\(pulled)")
        try s.mlv("push", in: "a")
        try s.mlv("pull", in: "b")
        #expect(try s.mlv("log", "dataset", "mnist", in: "b").lines.filter { $0.hasPrefix("mnist@v") }.count == 3)

        // A stage moved on the remote since a's last fetch: refused with who did it.
        try s.run(["promote", "model", "digits@v1", "--to", "staging", "-m", "back"], in: "b")
        try s.mlv("push", in: "b")
        try s.mlv("promote", "model", "digits@v1", "--to", "archived", "-m", "retire", in: "a")
        let moved = try s.mlv("push", status: 3, in: "a")
        #expect(moved.stderr.contains("model:digits registry"), "\(moved)")
        let diverged = try s.mlv("pull", status: 3, in: "a")
        #expect(diverged.stderr.contains("diverged"), "\(diverged)")
        try s.mlv("audit", "digits", "--verify", in: "a")

        // A lazy clone fetches file contents when a checkout needs them.
        try s.mlv("clone", "--lazy", s.path("shared"), "c")
        try s.mlv("checkout", "mnist@v1", "--to", "out", in: "c")
        #expect(try Scenario.read(s.path("c/out/big.bin")) == Scenario.read(s.path("b/out/big.bin")))

        // A fetch records what the remote has; status --remote shows what is only there.
        try s.write("b/out/z.csv", .text("z\n"))
        try s.mlv("add", "dataset", "other", "out", in: "b")
        try s.mlv("push", in: "b")
        try s.mlv("fetch", in: "c")
        #expect(try s.mlv("status", "--remote", in: "c").stdout.contains("dataset:other@v1  remote only"))

        // A pack damaged on the remote: named by object id, not stored, exit 4.
        let packs = try Scenario.names(in: s.path("shared/packs")).filter { $0.hasSuffix(".pack") }
        for p in packs { try patchFile(s.path("shared/packs/" + p), at: 8 + 48 + 1) { $0 ^ 0xff } }
        let damaged = try s.mlv("clone", s.path("shared"), "d", status: 4)
        #expect(damaged.stderr.contains("damaged object"), "\(damaged)")
        #expect(try !Scenario.names(in: s.path("shared/damaged")).isEmpty)
        // The store that has good copies sends them again on its next push. Damage below a
        // damaged tree is found only once that tree arrives, so this can take a few rounds.
        var rounds = 0
        while true {
            rounds += 1
            try s.mlv("push", in: "b")
            let r = try MLVBinary.run(["pull"], in: s.path("d"), environment: s.environment)
            if r.status == 0 || rounds == 5 {
                #expect(r.status == 0, "\(r)")
                break
            }
            #expect(r.status == 4 && r.stderr.contains("damaged object"), "\(r)")
        }
        try s.mlv("fsck", "--full", in: "d")

        try s.mlv("remote", "remove", "origin", in: "a")
        #expect(try s.mlv("remote", "list", in: "a").stdout.contains("no remotes"))
    }

    @Test func unknownRemotesAndEmptyRemotesHaveClearErrors() throws {
        let s = try Session()
        try s.mlv("init")
        let none = try s.mlv("push", status: 2)
        #expect(none.stderr.contains("no remote is configured"))
        try s.mlv("remote", "add", "origin", s.path("r"))
        let unknown = try s.mlv("fetch", "nope", status: 2)
        #expect(unknown.stderr.contains("no remote 'nope'") && unknown.stderr.contains("origin"))
        let bad = try s.mlv("remote", "add", "Bad Name", s.path("r2"), status: 5)
        #expect(bad.stderr.contains("invalid name"))
        let empty = try s.mlv("clone", s.path("r"), "x", status: 2)
        #expect(empty.stderr.contains("holds no mlv store"))
    }
}

/// The same through the binary against moto_server, with credentials in the environment.
@Suite("mlv S3 remotes end to end", .enabled(if: MotoServer.isInstalled, Comment(rawValue: MotoServer.missingMessage)))
struct S3RemoteEndToEndTests {
    @Test func pushAndCloneThroughS3AndClearErrorsForCredentialsAndEndpoints() throws {
        let moto = try MotoServer.shared()
        let url = "s3://\(moto.bucket)/e2e-\(UInt64.random(in: 0...UInt64.max))"
        let s = try Session(identity: "alice@lab")
        let aws = ["AWS_ACCESS_KEY_ID": moto.credentials.accessKeyID, "AWS_SECRET_ACCESS_KEY": moto.credentials.secretAccessKey,
                   "AWS_SHARED_CREDENTIALS_FILE": s.path("none"), "AWS_CONFIG_FILE": s.path("none")]
        func mlv(_ args: String..., status: Int32 = 0, in dir: String = "a", env: [String: String] = aws) throws -> ProcessResult {
            let r = try MLVBinary.run(args, in: s.path(dir), environment: s.environment.merging(env) { $1 })
            #expect(r.status == status, "\(r)")
            return r
        }
        try s.write("a/data", ["x.csv": "1,2\n", "big.bin": .random(seed: 7, count: 100_000)])
        _ = try mlv("init")
        _ = try mlv("add", "dataset", "mnist", "data")
        _ = try mlv("remote", "add", "origin", url, "--endpoint", moto.endpoint)
        let config = String(decoding: try Scenario.read(s.path("a/.mlv/remotes/origin/config")), as: UTF8.self)
        #expect(!config.contains(moto.credentials.secretAccessKey) && !config.contains(moto.credentials.accessKeyID))
        #expect(try mlv("push").stdout.contains("dataset:mnist@v1"))
        #expect(try mlv("push").stdout.contains("up to date"))
        _ = try mlv("clone", url, "b", "--endpoint", moto.endpoint, in: "")
        _ = try mlv("checkout", "mnist", "--to", "out", in: "b")
        #expect(try Scenario.snapshot(s.path("b/out")) == Scenario.snapshot(s.path("a/data")))

        // No credentials anywhere: a clear error that shows no secret.
        let none = try mlv("push", status: 5, env: ["AWS_SHARED_CREDENTIALS_FILE": s.path("none"), "AWS_CONFIG_FILE": s.path("none")])
        #expect(none.stderr.contains("AWS_ACCESS_KEY_ID"), "\(none)")
        // Nothing listens there: a clear error, quickly.
        let port = MotoServer.freePort()
        let down = try mlv("clone", url, "c", "--endpoint", "http://127.0.0.1:\(port)", status: 1, in: "")
        #expect(down.stderr.contains("127.0.0.1:\(port)") || down.stderr.contains("connect"), "\(down)")
    }
}
