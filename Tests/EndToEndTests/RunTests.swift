import MLVBasics
import MLVKit
import MLVModel
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

let gitAvailable = SystemFiles.onPath("git", path: "/usr/local/bin:/usr/bin:/bin")

/// `mlv run`, `mlv log run`, `mlv log metric` and `mlv rerun` through the real binary.
@Suite("mlv run")
struct RunTests {
    func store() throws -> Session {
        let s = try Session()
        try s.mlv("init")
        return s
    }

    /// Runs `mlv ARGS` without the "stderr empty on success" rule (`mlv run` reports on stderr).
    func mlv(_ s: Session, _ arguments: [String], status: Int32, in relative: String = "", env: [String: String] = [:],
             sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessResult {
        let r = try MLVBinary.run(arguments, in: s.path(relative), environment: s.environment.merging(env) { $1 })
        #expect(!r.timedOut, "\(r)", sourceLocation: sourceLocation)
        #expect(r.status == status, "\(r)", sourceLocation: sourceLocation)
        return r
    }

    func repo(_ s: Session) throws -> Repository { try Repository.open(searchingFrom: s.directory) }

    func onlyRun(_ s: Session, sourceLocation: SourceLocation = #_sourceLocation) throws -> RunManifest {
        let runs = try repo(s).runs()
        #expect(runs.count == 1, sourceLocation: sourceLocation)
        return try #require(runs.last, sourceLocation: sourceLocation).manifest
    }

    func blob(_ s: Session, _ id: ObjectID?) throws -> [UInt8] {
        var out: [UInt8] = []
        try repo(s).readBlob(try #require(id)) { out.append(contentsOf: $0) }
        return out
    }

    /// The only run's log as `mlv logs` prints it.
    func renderedLog(_ s: Session) throws -> [UInt8] {
        let r = try #require(try repo(s).runs().last)
        var out: [UInt8] = []
        try repo(s).streamLog(r) { out.append(contentsOf: $0) }
        return out
    }

    func lines(_ bytes: [UInt8]) -> [String] {
        String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    func git(_ s: Session, _ args: String..., in relative: String = "") throws {
        let r = try runProgram("/usr/bin/git", ["-c", "user.name=T", "-c", "user.email=t@e", "-c", "init.defaultBranch=main"] + args,
                               in: s.path(relative))
        #expect(r.status == 0, "\(r)")
    }

    @Test func outputPassesThroughAndAFailureIsRecordedWithItsExitCode() throws {
        let s = try store()
        let r = try mlv(s, ["run", "--name", "demo", "--param", "lr=0.1", "--", "sh", "-c", "echo hi; printf 'err\\n' >&2; printf partial; exit 3"],
                        status: 3, env: ["MY_API_TOKEN": "abc", "PLAIN": "visible"])
        #expect(r.stdout == "hi\npartial")
        #expect(r.stderr.hasPrefix("err\nmlv: run "), "\(r)")
        #expect(r.stderr.contains("(demo) failed (exit 3)"))
        let m = try onlyRun(s)
        #expect(m.status == .failed && m.exitCode == 3 && m.signal == nil)
        #expect(m.params == ["lr": "0.1"] && m.name == "demo" && m.command == ["sh", "-c", "echo hi; printf 'err\\n' >&2; printf partial; exit 3"])
        #expect(m.code == nil, "not a git work tree: no code")
        #expect(try blob(s, m.log).starts(with: TerminalLog.magic), "mlv run stores mlv.log/2")
        let log = lines(try renderedLog(s))
        #expect(log.count == 3)
        #expect(log.map { String($0.dropFirst(25)) }.sorted() == ["err err", "out hi", "out partial"])
        for line in log { #expect(line.utf8.count > 25 && line.dropFirst(10).hasPrefix("T") && line.dropFirst(23).hasPrefix("Z "), "\(line)") }
        let env = try JSON.parse(try blob(s, m.environment))
        #expect(env["schema"]?.string == "mlv.environment/1")
        #expect(env["variables"]?["MY_API_TOKEN"]?.string == "<redacted>")
        #expect(env["variables"]?["PLAIN"]?.string == "visible")
        #expect(env["cpu"]?["cores"]?.int ?? 0 > 0)
        #expect(env["python"] == nil)
        #expect(!FS.exists(s.path(".mlv/active/" + m.run)), "the active directory is removed")
        try s.mlv("fsck")
    }

    /// `mlv run ... | head -c 1`: the reader leaves, and mlv's later writes of the output
    /// fail with EPIPE. SIGPIPE stays at its default in mlv (nothing changes it process-wide),
    /// so only blocking it around each write keeps mlv alive to record the run.
    @Test func aReaderThatLeavesDoesNotEndTheRunBeforeItIsRecorded() throws {
        let s = try store()
        let script = "\"$0\" run --name chatty -- sh -c 'seq 1 100000' | head -c 1 >/dev/null; echo \"${PIPESTATUS[0]}\" > status"
        let r = try runProgram("/bin/bash", ["-c", script, try MLVBinary.path()], in: s.directory, environment: s.environment)
        #expect(r.status == 0, "\(r)")
        #expect(try Scenario.read(s.path("status")) == Array("0\n".utf8), "mlv's exit status (141: killed by SIGPIPE)")
        let m = try onlyRun(s)
        #expect(m.status == .succeeded && m.exitCode == 0 && m.name == "chatty")
        #expect(lines(try renderedLog(s)).count == 100000, "the whole output is logged")
    }

    /// A child starts with SIGPIPE at its default even when mlv was started with it
    /// ignored (`nohup`, some CI runners), so `producer | head` in a run ends as usual.
    @Test(.enabled(if: FS.exists("/proc/self/status")))
    func theChildGetsTheDefaultSIGPIPEWhateverMlvInherited() throws {
        let s = try store()
        let script = "trap '' PIPE; exec \"$0\" run --name sig -- sh -c 'grep SigIgn /proc/self/status'"
        let r = try runProgram("/bin/bash", ["-c", script, try MLVBinary.path()], in: s.directory, environment: s.environment)
        #expect(r.status == 0, "\(r)")
        let field = r.stdout.split(whereSeparator: { $0 == "\t" || $0 == "\n" || $0 == " " }).last.map(String.init) ?? ""
        let mask = try #require(UInt64(field, radix: 16), "\(r)")
        #expect(mask & (1 << (UInt64(SIGPIPE) - 1)) == 0, "the child ignores SIGPIPE: SigIgn \(String(mask, radix: 16))")
    }

    @Test func aSignalAndAMissingCommandAreRecorded() throws {
        let s = try store()
        let r = try mlv(s, ["run", "--", "sh", "-c", "kill -TERM $$"], status: 128 + SIGTERM)
        #expect(r.stderr.contains("killed (SIGTERM)"))
        var m = try onlyRun(s)
        #expect(m.status == .killed && m.signal == "SIGTERM" && m.exitCode == nil)

        let missing = try mlv(s, ["run", "--name", "nf", "--", "mlv-no-such-program"], status: 127)
        #expect(missing.stderr.contains("command not found: mlv-no-such-program"))
        m = try #require(try repo(s).resolveRun("nf").manifest)
        #expect(m.status == .failed && m.exitCode == 127)
    }

    @Test func sigtermAndSigintSentToMlvAreForwarded() throws {
        let s = try store()
        for (signal, status, recorded) in [(SIGTERM, RunStatus.killed, "SIGTERM"), (SIGINT, .interrupted, "SIGINT")] {
            let marker = s.path("started-\(signal)")
            let child = try MLVBinary.start(["run", "--name", "sig\(signal)", "--", "sh", "-c", "touch '\(marker)'; exec sleep 30"],
                                            in: s.directory, environment: s.environment)
            let deadline = monotonicMilliseconds() + 20_000
            while !FS.exists(marker) && monotonicMilliseconds() < deadline { usleep(10_000) }
            usleep(50_000)
            kill(child.pid, signal)
            let r = child.wait()
            #expect(r.status == 128 + signal, "\(r)")
            let m = try repo(s).resolveRun("sig\(signal)").manifest
            #expect(m.status == status && m.signal == recorded)
        }
    }

    @Test func metricsFromTheChildAndBadLines() throws {
        let s = try store()
        let mlvPath = try MLVBinary.path()
        let script = """
            "$MLV" log metric loss=0.5 --step 1
            "$MLV" log metric loss=0.25 acc=0.75 --step 2
            echo 'not json' >> "$MLV_METRICS_FILE"
            echo '{"step": 3, "acc": 0.8}' >> "$MLV_METRICS_FILE"
            test -n "$MLV_RUN_ID"
            """
        let r = try mlv(s, ["run", "--", "sh", "-c", script], status: 0, env: ["MLV": mlvPath])
        #expect(r.stderr.contains("MLV_METRICS_FILE:3: not JSON"), "\(r)")
        let m = try onlyRun(s)
        #expect(m.metrics == ["loss": 0.25, "acc": 0.8])
        let series = lines(try blob(s, m.series)).map { try! MetricPoint(seriesLine: Array($0.utf8)) }
        #expect(series.map(\.name) == ["loss", "acc", "loss", "acc"])
        #expect(series.map(\.step) == [1, 2, 2, 3])

        let outside = try mlv(s, ["log", "metric", "loss=1"], status: 5)
        #expect(outside.stderr.contains("not inside 'mlv run'"))
        let dup = try mlv(s, ["run", "--param", "lr=1", "--param", "lr=2", "--", "true"], status: 64)
        #expect(dup.stderr.contains("--param 'lr' given twice"))
        #expect(try repo(s).runs().count == 1)
    }

    @Test func outputsStoredMissingAndFailed() throws {
        let s = try store()
        try s.write("data", ["a.txt": "alpha\n"])
        try s.mlv("add", "dataset", "raw", "data")
        let bad = try mlv(s, ["run", "--input", "train=raw@v9", "--", "touch", "never"], status: 2)
        #expect(bad.stderr.contains("raw@v9"))
        #expect(!FS.exists(s.path("never")), "a bad input ref fails before anything runs")

        try mlv(s, ["run", "--name", "ok", "--input", "train=raw@v1", "--output", "model:m=out/m.bin", "--output", "dataset:d=out/d",
                    "--", "sh", "-c", "mkdir -p out/d && echo w > out/m.bin && echo x > out/d/x"], status: 0)
        let ok = try repo(s).resolveRun("ok")
        #expect(ok.manifest.outputs.map(\.status) == [.stored, .stored])
        let model = try repo(s).resolve("model:m@v1")
        #expect(model.id == ok.manifest.outputs[0].id)
        let json = try JSON.parse(try repo(s).objects.read(model.id).bytes)
        #expect(json["run"]?.string == ok.run)
        #expect(json["inputs"]?.array?.first?["role"]?.string == "train")
        #expect(try repo(s).resolve("dataset:d@v1").id == ok.manifest.outputs[1].id)

        let missing = try mlv(s, ["run", "--name", "miss", "--output", "model:m=out/none.bin", "--", "true"], status: 1)
        #expect(missing.stderr.contains("never wrote 'out/none.bin'"))
        let miss = try repo(s).resolveRun("miss").manifest
        #expect(miss.status == .succeeded && miss.outputs.first?.status == .missing && miss.outputs.first?.id == nil)

        try mlv(s, ["run", "--name", "bad", "--output", "model:m=out/m2.bin", "--", "sh", "-c", "echo v2 > out/m2.bin; exit 2"], status: 2)
        let failed = try repo(s).resolveRun("bad").manifest
        #expect(failed.outputs.first?.status == .failed)
        let stored = try #require(failed.outputs.first?.id)
        #expect(try repo(s).objects.contains(stored), "a failed run's output is stored")
        #expect(try repo(s).resolve("model:m").version == 1, "but no version points at it")
        try s.mlv("fsck")
    }

    @Test(.enabled(if: gitAvailable)) func gitWorkTreeWithUncommittedChangesAndBinaryFiles() throws {
        let s = try store()
        try s.write("", [".gitignore": "ignored.txt\n.mlv/\n", "train.sh": "echo training\n", "w.bin": .random(seed: 5, count: 3000)])
        try git(s, "init", "-q")
        try git(s, "remote", "add", "origin", "https://alice:s3cret@example.com/team/repo.git")
        try git(s, "add", ".")
        try git(s, "commit", "-q", "-m", "first")
        try s.write("train.sh", "echo training harder\n")
        try s.write("w.bin", .random(seed: 6, count: 3000))
        try s.write("new.py", "print(1)\n")
        try s.write("ignored.txt", "secret\n")
        try s.write("sub/dir/keep.txt", "k\n")

        let r = try mlv(s, ["run", "--name", "g", "--", "sh", "../train.sh"], status: 0, in: "sub")
        #expect(r.stdout == "training harder\n", "\(r)")
        let m = try onlyRun(s)
        let code = try #require(m.code)
        #expect(code.commit?.count == 40 && code.branch == "main" && code.dirty)
        #expect(code.remote == "https://example.com/team/repo.git")
        let diff = String(decoding: try blob(s, code.diff), as: UTF8.self)
        #expect(diff.contains("+echo training harder") && diff.contains("GIT binary patch"))
        #expect(m.meta["codeCwd"] == "sub")
        let snapshot = try #require(code.snapshot)
        let files = try repo(s).flatten(try CodeManifest(json: JSON.parse(try repo(s).objects.read(snapshot).bytes)).root)
        #expect(Set(files.map(\.path)) == [".gitignore", "train.sh", "w.bin", "new.py", "sub/dir/keep.txt"])
        let trainBlob = try #require(files.first { $0.path == "train.sh" }?.id)
        #expect(try blob(s, trainBlob) == Array("echo training harder\n".utf8))

        // Nothing changed: the same snapshot (through the stat cache), and mlv says the run exists.
        let again = try mlv(s, ["run", "--name", "g", "--", "sh", "../train.sh"], status: 0, in: "sub")
        #expect(again.stderr.contains("an identical run exists") && again.stderr.contains(m.run), "\(again)")
        let runs = try repo(s).runs()
        #expect(runs.count == 2 && runs[1].manifest.code?.snapshot == snapshot)
        let skipped = try mlv(s, ["run", "--skip-existing", "--name", "g", "--", "sh", "../train.sh"], status: 0, in: "sub")
        #expect(skipped.stdout.isEmpty && skipped.stderr.contains("skipped"))
        #expect(try repo(s).runs().count == 2)

        // An edit makes a new snapshot.
        try s.write("new.py", "print(2)\n")
        try mlv(s, ["run", "--name", "g", "--", "sh", "../train.sh"], status: 0, in: "sub")
        #expect(try repo(s).runs().last?.manifest.code?.snapshot != snapshot)
        try s.mlv("fsck")
    }

    @Test(.enabled(if: gitAvailable)) func aCleanWorkTreeIsNotDirtyBecauseOfTheStore() throws {
        let s = try store()
        try s.write("a.py", "print(1)\n")
        try git(s, "init", "-q")
        try git(s, "add", "a.py")
        try git(s, "commit", "-q", "-m", "first")
        try mlv(s, ["run", "--", "true"], status: 0)
        let code = try #require(try onlyRun(s).code)
        #expect(!code.dirty && code.diff == nil && code.remote == nil)
        let files = try repo(s).flatten(try CodeManifest(json: JSON.parse(try repo(s).objects.read(code.snapshot!).bytes)).root)
        #expect(files.map(\.path) == ["a.py"], "the store is never code")
    }

    @Test(.enabled(if: gitAvailable)) func aRepositoryWithoutCommitsAndADetachedHead() throws {
        let s = try store()
        try s.write("a.py", "print(1)\n")
        try git(s, "init", "-q", "-b", "trunk")
        try mlv(s, ["run", "--name", "first", "--", "true"], status: 0)
        let first = try #require(try repo(s).resolveRun("first").manifest.code)
        #expect(first.commit == nil && first.branch == "trunk" && first.dirty && first.diff == nil && first.snapshot != nil)
        try git(s, "add", "a.py")
        try git(s, "commit", "-q", "-m", "first")
        try git(s, "checkout", "-q", "--detach")
        try mlv(s, ["run", "--name", "second", "--", "true"], status: 0)
        let second = try #require(try repo(s).resolveRun("second").manifest.code)
        #expect(second.commit?.count == 40 && second.branch == nil && !second.dirty && second.snapshot == first.snapshot)
    }

    @Test func outsideGitOnlyCodeFilesAreSnapshotted() throws {
        let s = try store()
        try s.write("prep.py", "x = 1\n")
        try mlv(s, ["run", "--name", "c", "--code", "prep.py", "--", "true"], status: 0)
        let m = try onlyRun(s)
        let snapshot = try #require(m.code?.snapshot)
        #expect(m.code?.commit == nil && m.code?.dirty == false)
        let manifest = try CodeManifest(json: JSON.parse(try repo(s).objects.read(snapshot).bytes))
        #expect(manifest.paths == ["prep.py"])
    }

    @Test func logRunImportsAndRefusesBadInput() throws {
        let s = try store()
        try s.write("m.jsonl", .text("{\"step\": 1, \"loss\": 0.5}\n{\"step\": 2, \"loss\": 0.3, \"acc\": 0.9}\n"))
        try s.write("bad.jsonl", .text("{\"loss\": 1}\n{oops\n"))
        try s.write("train.log", .text("epoch 1\nepoch 2"))
        try s.write("model.bin", .text("weights"))
        let r = try mlv(s, ["log", "run", "--name", "imported", "--param", "lr=0.1", "--metrics", "m.jsonl", "--log", "train.log",
                            "--output", "model:digits=model.bin", "--started", "2026-11-27T01:00:00Z", "--ended", "2026-11-27T02:00:00Z"],
                        status: 0)
        #expect(r.stdout.hasPrefix("run ") && r.stderr.isEmpty, "\(r)")
        let m = try onlyRun(s)
        #expect(m.metrics == ["loss": 0.3, "acc": 0.9] && m.status == .succeeded && m.started == "2026-11-27T01:00:00Z")
        #expect(lines(try blob(s, m.log)) == ["2026-11-27T01:00:00Z out epoch 1", "2026-11-27T01:00:00Z out epoch 2"])
        #expect(try repo(s).resolve("model:digits@v1").id == m.outputs.first?.id)

        let missing = try mlv(s, ["log", "run", "--name", "x", "--metrics", "nope.jsonl"], status: 2)
        #expect(missing.stderr.contains("nope.jsonl"))
        let bad = try mlv(s, ["log", "run", "--name", "x", "--metrics", "bad.jsonl"], status: 5)
        #expect(bad.stderr.contains("bad.jsonl") && bad.stderr.contains("line 2"), "\(bad)")
        try mlv(s, ["log", "run", "--name", "x", "--status", "maybe"], status: 64)
        try mlv(s, ["log", "run", "--name", "x", "--started", "yesterday"], status: 5)
        #expect(try repo(s).runs().count == 1, "nothing recorded by the refused imports")
        try s.mlv("log", "dataset", "nothing", status: 2)
    }

    @Test(.enabled(if: gitAvailable)) func rerunUsesTheSnapshotInputsAndParams() throws {
        let s = try store()
        try s.write("", [".gitignore": ".mlv/\nout/\n", "job.sh": "mkdir -p out; echo \"p=$1\" > out/r.txt; cat input.txt >> out/r.txt\n",
                         "input.txt": "v1\n"])
        try git(s, "init", "-q")
        try git(s, "add", ".")
        try git(s, "commit", "-q", "-m", "first")
        try s.write("input.txt", "uncommitted\n")
        try mlv(s, ["run", "--name", "job", "--param", "p=7", "--output", "dataset:res=out/r.txt", "--", "sh", "job.sh", "7"], status: 0)
        let original = try onlyRun(s)
        try s.write("input.txt", "changed after the run\n")

        let dry = try mlv(s, ["rerun", "job", "--dry-run"], status: 0)
        #expect(dry.stdout.contains("command: sh job.sh 7") && dry.stdout.contains("param:   p=7"), "\(dry)")
        #expect(try repo(s).runs().count == 1)

        let work = s.path("rerun-work")
        let r = try mlv(s, ["rerun", String(original.run.prefix(6)), "--workdir", work], status: 0)
        #expect(r.stderr.contains("an identical run exists"), "\(r)")
        #expect(try Scenario.read(work + "/out/r.txt") == Array("p=7\nuncommitted\n".utf8))
        let runs = try repo(s).runs()
        #expect(runs.count == 2)
        let rerun = runs.first { $0.run != original.run }!.manifest
        #expect(rerun.meta["rerunOf"] == original.run && rerun.fingerprint == original.fingerprint)
        #expect(rerun.params == ["p": "7"] && rerun.outputs.first?.status == .stored)
        try mlv(s, ["rerun", "no-such-run"], status: 2)
    }
}
