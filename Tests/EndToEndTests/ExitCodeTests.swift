import MLVBasics
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Each class of error gives its documented exit code and an `mlv: error: ...` line on
/// stderr naming the thing involved; nothing goes to stdout.
@Suite("mlv exit codes and messages")
struct ExitCodeTests {
    /// A store with `mnist@v1` added from `data` (a.txt, sub/b.bin).
    func store() throws -> Session {
        let s = try Session()
        try s.mlv("init")
        try s.write("data", ["a.txt": "alpha\n", "sub/b.bin": .random(seed: 1, count: 30_000)])
        try s.mlv("add", "dataset", "mnist", "data")
        return s
    }


    /// Output that cannot be written (here stdout is /dev/full) is an error, exit 1, not a
    /// silent exit 0 with nothing said.
    @Test func lostStandardOutputIsAnError() throws {
        guard FS.exists("/dev/full") else { return }
        let s = try store()
        let r = try runProgram("/bin/sh", ["-c", "exec \"$0\" log dataset mnist > /dev/full", try MLVBinary.path()],
                               in: s.directory, environment: s.environment)
        #expect(r.status == 1, "\(r)")
        #expect(r.stderr.hasPrefix("mlv: error: ") && r.stderr.contains("stdout"), "\(r)")
    }

    func expectError(_ s: Session, _ arguments: [String], status: Int32, mentions: [String],
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try s.run(arguments, status: status, sourceLocation: sourceLocation)
        #expect(r.stderr.hasPrefix("mlv: error: "), "\(r)", sourceLocation: sourceLocation)
        #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r)", sourceLocation: sourceLocation)
        for m in mentions {
            #expect(r.stderr.contains(m), "stderr does not mention '\(m)': \(r)", sourceLocation: sourceLocation)
        }
        #expect(r.stdout.isEmpty, "\(r)", sourceLocation: sourceLocation)
    }

    @Test func notFoundIsTwo() throws {
        let s = try store()
        try expectError(s, ["show", "mnsit@v1"], status: 2, mentions: ["mnsit@v1", "did you mean mnist"])
        try expectError(s, ["show", "mnist@v5"], status: 2, mentions: ["mnist@v5"])
        try expectError(s, ["ls", "mnist@v1#nope"], status: 2, mentions: ["nope"])
        try expectError(s, ["ls", "mnist@v1", "no/such/dir"], status: 2, mentions: ["no/such/dir"])
        try expectError(s, ["add", "dataset", "other", "missing-dir"], status: 2, mentions: ["missing-dir"])
        try expectError(s, ["add", "dataset", "other", "data", "--from", "nope@v1"], status: 2, mentions: ["nope@v1"])
        try expectError(s, ["log", "dataset", "cifar"], status: 2, mentions: ["cifar"])
        try expectError(s, ["status", "cifar"], status: 2, mentions: ["cifar"])
        try expectError(s, ["hash", "no-such-file"], status: 2, mentions: ["no-such-file"])
        try expectError(s, ["chunks", "no-such-file"], status: 2, mentions: ["no-such-file"])
        let empty = try Scenario.makeDirectory(prefix: "mlv-e2e-nostore")
        defer { Scenario.removeTree(empty) }
        try expectError(s, ["datasets", "--store", empty], status: 2, mentions: [empty, "mlv init"])
        try s.mlv("fsck")
    }

    @Test func conflictIsThree() throws {
        let s = try store()
        try s.write("target/a.txt", "my edit\n")
        try expectError(s, ["checkout", "mnist", "--to", "target"], status: 3, mentions: ["a.txt", "--force"])
        #expect(try Scenario.snapshot(s.path("target")) == ["a.txt": "my edit\n"])
        try s.mlv("checkout", "mnist", "--to", "target", "--force")
        #expect(try Scenario.read(s.path("target/a.txt")) == Array("alpha\n".utf8))
    }

    @Test func damageIsFourAndFsckFailsWithOne() throws {
        let s = try store()
        // Flip one byte in the middle of the pack (inside the 30 kB random chunk).
        let packs = try Scenario.names(in: s.path(".mlv/packs")).filter { $0.hasSuffix(".pack") }
        try #require(packs.count == 1)
        let pack = s.path(".mlv/packs/" + packs[0])
        try patchFile(pack, at: 8 + 48 + 15_000) { $0 ^ 0xFF }

        try expectError(s, ["checkout", "mnist", "--to", "out"], status: 4, mentions: ["damaged", packs[0]])
        #expect(Scenario.lstatOrNil(s.path("out")) == nil)
        let fsck = try s.mlv("fsck", "--full", status: 1)
        #expect(fsck.stdout.contains("error: "))
        #expect(fsck.stdout.contains(packs[0]))
        #expect(fsck.lines.last?.contains("problems") == true)

        // An emptied ref: fsck names it; reading it is damage.
        try truncateFile(s.path(".mlv/refs/dataset/mnist/versions/1"), to: 0)
        let fsck2 = try s.mlv("fsck", status: 1)
        #expect(fsck2.stdout.contains("refs/dataset/mnist/versions/1"))
        try expectError(s, ["show", "mnist"], status: 4, mentions: ["versions/1", "empty"])
        try expectError(s, ["gc", "--grace", "0"], status: 4, mentions: ["gc refused"])
    }

    @Test func refusedIsFive() throws {
        let s = try store()
        try expectError(s, ["add", "dataset", "MNIST", "data"], status: 5, mentions: ["'MNIST'"])
        try expectError(s, ["add", "dataset", "x", ".mlv/refs"], status: 5, mentions: [".mlv/refs"])
        try s.write("bad/a\\b.txt", "x\n")
        try expectError(s, ["add", "dataset", "x", "bad"], status: 5, mentions: ["a\\b.txt", "backslash"])
        try s.write("pipe/p", .fifo)
        try expectError(s, ["add", "dataset", "x", "pipe"], status: 5, mentions: ["pipe/p", "named pipe"])
        try s.write("ctrl/line\nbreak", "x\n")
        try expectError(s, ["add", "dataset", "x", "ctrl"], status: 5, mentions: ["line\\u{a}break"])
        try expectError(s, ["show", "MNIST"], status: 5, mentions: ["MNIST"])
        try expectError(s, ["config", "colour", "blue"], status: 5, mentions: ["colour"])
        #expect(try s.json("datasets").array?.count == 1)
        try s.mlv("fsck")

        // A store from a newer mlv.
        try Scenario.write(.text(#"{"chunker":{"avg":65536,"max":262144,"min":16384},"format":2}"# + "\n"),
                           at: s.path(".mlv/config"))
        try expectError(s, ["datasets"], status: 5, mentions: ["format version 2", "Upgrade mlv"])
    }

    @Test func usageIsSixtyFour() throws {
        let s = try store()
        for args in [["add", "dataset"], ["--bogus"], ["gc", "--grace", "soon"], ["checkout", "mnist"],
                     ["add", "dataset", "x", "data", "--meta", "novalue"], ["hash"]] {
            let r = try s.run(args, status: 64)
            #expect(r.stderr.contains("Error: ") && r.stderr.contains("Usage: mlv"), "\(r)")
        }
        let meta = try s.run(["add", "dataset", "x", "data", "--meta", "novalue"], status: 64)
        #expect(meta.stderr.contains("--meta 'novalue'"))
        #expect(try s.json("datasets").array?.count == 1)
    }

    /// chmod 000 does not stop root, so as root mlv is run as `nobody` (via setpriv) on a
    /// world-writable copy of the scenario.
    @Test func unreadableFileIsRefusedAndNamed() throws {
        let s = try store()
        try s.write("secret/ok.txt", "ok\n")
        try s.write("secret/z.bin", .random(seed: 5, count: 10_000, mode: 0))
        var prefix: [String] = []
        if getuid() == 0 {
            guard access("/usr/bin/setpriv", X_OK) == 0 else { return }   // cannot drop privileges here
            #expect(try runProgram("/bin/chmod", ["-R", "a+rwX", s.directory], in: "/").status == 0)
            #expect(chmod(s.path("secret/z.bin"), 0) == 0)
            prefix = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        }
        let command = prefix + [try MLVBinary.path(), "add", "dataset", "secret", "secret"]
        let r = try runProgram(command[0], Array(command.dropFirst()), in: s.directory, environment: s.environment)
        #expect(r.status == 5, "\(r)")
        #expect(r.stderr.hasPrefix("mlv: error: cannot read '") && r.stderr.contains("secret/z.bin"), "\(r)")
        #expect(try s.json("datasets").array?.count == 1)
        try s.mlv("fsck")
    }
}
