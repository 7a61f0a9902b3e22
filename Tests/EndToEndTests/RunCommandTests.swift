import MLVBasics
import MLVKit
import MLVModel
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The run read commands through the real binary, on runs recorded in the formats
/// `mlv run` writes: runs, show run, logs (and --follow), metrics, diff run, compare.
@Suite("mlv run queries end to end")
struct RunCommandEndToEndTests {
    static let log = "2026-11-27T01:00:00.100Z out epoch 1 loss 0.9\n2026-11-27T01:00:01.200Z err warning: slow\n"
        + "2026-11-27T01:00:02.300Z out epoch 2 loss 0.4\n"

    /// mnist v1 and v2 (same eval split), runs "baseline" and "tuned", models digits v1
    /// (from baseline, in production) and v2 (from tuned).
    func store() throws -> (Session, Repository) {
        let s = try Session(identity: "alice@lab")
        try s.mlv("init")
        try s.write("data", ["train/a.csv": "1\n", "eval/b.csv": "2\n"])
        try s.mlv("add", "dataset", "mnist", "data", "--split", "train=train", "--split", "eval=eval")
        try s.write("data/train/a.csv", .text("1\n3\n"))
        try s.mlv("add", "dataset", "mnist", "data", "--split", "train=train", "--split", "eval=eval")
        let repo = try Repository.open(searchingFrom: s.directory)
        let v = try repo.versions(of: "mnist").map(\.id)
        try RunFixture.record(repo, run: "aaaa000000000001", name: "baseline", started: "2026-11-27T01:00:00.000Z",
                              params: ["lr": "0.1", "epochs": "2"], points: [("loss", 1, 0.9), ("loss", 2, 0.4), ("acc", 2, 0.8)],
                              inputs: [Input(role: "train", id: v[0], split: "train"), Input(role: "eval", id: v[0], split: "eval")],
                              log: Self.log, environment: RunFixture.environment(packages: ["numpy==1.26.0"]),
                              system: "{\"cpu\":80.0,\"rss\":1048576}\n", code: RunCode(commit: "c0ffee", dirty: false))
        try RunFixture.record(repo, run: "aaaa100000000002", name: "tuned", started: "2026-11-27T02:00:00.000Z",
                              params: ["lr": "0.01", "epochs": "2"], points: [("loss", 1, 0.7), ("loss", 2, 0.2), ("acc", 2, 0.9)],
                              inputs: [Input(role: "train", id: v[1], split: "train"), Input(role: "eval", id: v[1], split: "eval")],
                              log: Self.log, environment: RunFixture.environment(packages: ["numpy==1.26.4"]))
        let root = try repo.datasetManifest(v[0]).root
        try RunFixture.model(repo, name: "digits", root: root, run: "aaaa000000000001")
        try RunFixture.model(repo, name: "digits", root: root, run: "aaaa100000000002")
        try s.mlv("promote", "model", "digits@v1", "--to", "production", "-m", "first")
        return (s, repo)
    }

    func expectError(_ s: Session, _ arguments: [String], status: Int32, mentions: [String],
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let r = try MLVBinary.run(arguments, in: s.directory, environment: s.environment)
        #expect(r.status == status, "\(r)", sourceLocation: sourceLocation)
        for m in mentions {
            #expect(r.stderr.contains(m), "stderr does not mention '\(m)': \(r)", sourceLocation: sourceLocation)
        }
    }

    @Test func runsListsFiltersSortsAndExports() throws {
        let (s, _) = try store()
        let all = try s.json("runs")
        #expect(all.array?.compactMap { $0["name"]?.string } == ["baseline", "tuned"])
        #expect(all.array?.first?["duration"] == .double(5.5))
        #expect(all.array?.first?["inputs"]?.array?.first == .string("train=mnist@v1#train"))
        let low = try s.json("runs", "--where", "params.lr<0.05", "--where", "metrics.acc>=0.9")
        #expect(low.array?.compactMap { $0["run"]?.string } == ["aaaa100000000002"])
        let sorted = try s.json("runs", "--sort", "-metrics.acc", "--limit", "1")
        #expect(sorted.array?.compactMap { $0["name"]?.string } == ["tuned"])
        #expect(try s.json("runs", "--where", "inputs~mnist@v2").array?.count == 1)
        let text = try s.mlv("runs")
        #expect(text.lines.first?.hasPrefix("ID") == true && text.stdout.contains("aaaa1000") && text.stdout.contains("lr=0.01"))
        let csv = try s.mlv("runs", "--csv")
        #expect(csv.lines.first == "id,name,status,started,duration,params.epochs,params.lr,metrics.acc,metrics.loss")
        #expect(csv.lines.count == 3)
        let tried = try s.json("runs", "--tried", "--input", "mnist@v1#train")
        #expect(tried["tried"]?.array?.first?["runs"]?.array?.first?["run"] == .string("aaaa000000000001"))
        #expect(try s.mlv("runs", "--tried", "--input", "mnist@v1").stdout.contains("lr=0.1"))

        for bad in ["params.lr", "bogus<1", "=3"] {
            try expectError(s, ["runs", "--where", bad], status: 64, mentions: ["'\(bad)'"])
        }
        try expectError(s, ["runs", "--sort", "-nope"], status: 64, mentions: ["nope"])
        try expectError(s, ["runs", "--tried"], status: 64, mentions: ["--input"])
    }

    @Test func showLogsAndMetrics() throws {
        let (s, _) = try store()
        let show = try s.json("show", "run", "baseline")
        #expect(show["run"] == .string("aaaa000000000001"))
        #expect(show["inputs"]?.array?.first?["version"] == .string("mnist@v1"))
        #expect(show["system"]?["peakRSS"] == .int(1_048_576))
        #expect(show["environment"]?["python"] == .string("3.11.4"))
        #expect(show["manifest"]?["params"]?["lr"] == .string("0.1"))
        let text = try s.mlv("show", "run", "aaaa0")
        for expected in ["command  python train.py", "status   succeeded, exit 0", "input    train: mnist@v1#train",
                         "code     commit c0ffee", "peak RSS 1.0 MiB", "(5.5s)"] {
            #expect(text.stdout.contains(expected), "missing '\(expected)': \(text)")
        }
        #expect(try s.json("show", "aaaa000000000001")["run"] == .string("aaaa000000000001"), "a bare run id shows the run")
        #expect(try s.json("show", "mnist@v1")["ref"]?["version"] == .int(1), "versions still show")

        #expect(try s.mlv("logs", "baseline").stdout == Self.log)
        let logJSON = try s.json("logs", "baseline")
        #expect(logJSON.array?.count == 3)
        #expect(logJSON.array?[1] == .object(["time": .string("2026-11-27T01:00:01.200Z"), "stream": .string("err"),
                                              "text": .string("warning: slow")]))

        let metrics = try s.json("metrics", "tuned")
        let loss = metrics["metrics"]?.array?.first
        #expect(loss?["name"] == .string("loss") && loss?["min"] == .double(0.2) && loss?["last"] == .double(0.2))
        #expect(loss?["points"]?.array?.count == 2)
        let table = try s.mlv("metrics", "tuned", "loss")
        #expect(table.lines.first?.contains("█") == true && table.lines.first?.contains("min 0.2") == true, "\(table)")
        #expect(try s.mlv("metrics", "tuned", "--csv").lines == ["step,time,loss,acc", "1,2026-11-27T01:00:00.000Z,0.7,",
                                                                "2,2026-11-27T01:00:01.000Z,0.2,0.9"])
        try expectError(s, ["metrics", "tuned", "f1"], status: 2, mentions: ["'f1'"])
    }

    @Test func diffAndCompare() throws {
        let (s, _) = try store()
        for d in [try s.json("diff", "run", "baseline", "tuned"), try s.json("diff", "baseline", "tuned")] {
            #expect(d["params"]?.array?.first?["key"] == .string("lr"))
            #expect(d["environment"]?["packages"]?.array?.first?["new"] == .string("1.26.4"))
        }
        let text = try s.mlv("diff", "run", "baseline", "tuned")
        #expect(text.stdout.contains("~ lr: 0.1 -> 0.01") && text.stdout.contains("acc: 0.8 -> 0.9 (+0.1)"), "\(text)")
        try s.mlv("diff", "mnist@v1", "mnist@v2")

        let c = try s.json("compare", "digits@production", "digits@v2")
        #expect(c["eval"]?["verdict"] == .string("same-content"))
        #expect(c["old"]?["stages"] == .array([.string("production")]))
        let compare = try s.mlv("compare", "digits@production", "digits@v2")
        #expect(compare.stdout.contains("same test set content") && !compare.stdout.contains("WARNING"), "\(compare)")
        try expectError(s, ["compare", "digits@v1", "digits@v7"], status: 2, mentions: ["digits@v7"])
    }

    @Test func badInput() throws {
        let (s, repo) = try store()
        try expectError(s, ["show", "run", "aaaa"], status: 5, mentions: ["aaaa000000000001", "aaaa100000000002"])
        try expectError(s, ["logs", "nosuchrun"], status: 2, mentions: ["no run 'nosuchrun'"])
        let ghost = SHA256.hash(Array("gone".utf8))
        try repo.recordRun(RunManifest(run: "0000000000000bad", name: "damaged", command: [], cwd: ".", started: "", ended: "",
                                       status: .failed, series: ghost, log: ghost, author: "t"))
        try expectError(s, ["logs", "damaged"], status: 4, mentions: ["0000000000000bad", ghost.hex])
        try expectError(s, ["metrics", "damaged"], status: 4, mentions: ["0000000000000bad", "series"])
    }

    @Test func followTailsAnActiveRunUntilItIsRecorded() throws {
        let (s, repo) = try store()
        let run = "00000000000000f1"
        let dir = try RunFixture.active(repo, run: run, name: "live", started: "2026-11-27T05:00:00.000Z")
        let lines = (0..<30).map { "2026-11-27T05:00:\($0 < 10 ? "0" : "")\($0).000Z out line \($0)\n" }
        try FS.atomicWrite(dir + "/log", Array(lines.prefix(10).joined().utf8))
        #expect(try s.json("runs", "--where", "status=running").array?.first?["run"] == .string(run))
        #expect(try s.json("show", "run", "live")["status"] == .string("running"))
        #expect(try s.mlv("logs", "live").stdout == lines.prefix(10).joined(), "without --follow: what is there now")
        let follower = try MLVBinary.start(["logs", "--follow", "live"], in: s.directory, environment: s.environment)
        let fd = try FS.open(dir + "/log", O_WRONLY | O_APPEND)
        for line in lines[10..<20] {
            try FS.writeAll(fd, Array(line.utf8), path: "log")
            usleep(10_000)
        }
        FS.close(fd)
        try RunFixture.record(repo, run: run, name: "live", log: lines.joined())
        try FS.removeTree(dir)
        let r = follower.wait()
        #expect(r.status == 0 && !r.timedOut, "\(r)")
        #expect(r.stdout == lines.joined())
    }

    /// The query commands on runs that `mlv run` itself recorded.
    @Test func readsWhatMlvRunRecords() throws {
        let s = try Session(identity: "alice@lab")
        try s.mlv("init")
        try s.write("data", ["train/a.csv": "1\n", "eval/b.csv": "2\n"])
        try s.mlv("add", "dataset", "mnist", "data", "--split", "train=train", "--split", "eval=eval")
        for lr in ["0.1", "0.01"] {
            let script = "echo \"lr $LR\"; printf '{\"step\": 1, \"loss\": 0.5}\\n{\"step\": 2, \"loss\": %s}\\n' $LR >> \"$MLV_METRICS_FILE\"; printf m$LR > m.bin"
            let r = try MLVBinary.run(["run", "--name", "train", "--param", "lr=\(lr)", "--input", "train=mnist@v1#train",
                                       "--input", "eval=mnist@v1#eval", "--output", "model:digits=m.bin", "--metrics-interval", "0.2",
                                       "--", "sh", "-c", script], in: s.directory, environment: s.environment.merging(["LR": lr]) { $1 })
            #expect(r.status == 0, "\(r)")
        }
        let runs = try s.json("runs", "--sort", "params.lr")
        #expect(runs.array?.compactMap { $0["params"]?["lr"]?.string } == ["0.01", "0.1"])
        #expect(runs.array?.first?["metrics"]?["loss"] == .double(0.01))
        #expect(runs.array?.first?["inputs"] == .array([.string("train=mnist@v1#train"), .string("eval=mnist@v1#eval")]))
        let show = try s.json("show", "run", "train")
        #expect(show["outputs"]?.array?.first?["version"] == .string("model:digits@v2"))
        #expect(show["environment"]?["variables"] != nil)
        #expect(try s.mlv("logs", "train").stdout.hasSuffix(" out lr 0.01\n"))
        let metrics = try s.json("metrics", "train", "loss")
        #expect(metrics["metrics"]?.array?.first?["points"]?.array?.count == 2)
        let first = try #require(runs.array?.last?["run"]?.string)
        let diff = try s.json("diff", "run", first, "train")
        #expect(diff["params"] == .array([.object(["key": .string("lr"), "change": .string("changed"), "old": .string("0.1"),
                                                   "new": .string("0.01")])]))
        let compare = try s.json("compare", "digits@v1", "digits@v2")
        #expect(compare["eval"]?["verdict"] == .string("same"))
        #expect(try s.json("runs", "--tried", "--input", "mnist@v1#train")["tried"]?.array?.count == 2)
    }

    @Test func followsALiveMlvRun() throws {
        let s = try Session()
        try s.mlv("init")
        let run = try MLVBinary.start(["run", "--name", "slow", "--", "sh", "-c", "echo one; sleep 0.5; echo two"],
                                      in: s.directory, environment: s.environment)
        let active = s.path(".mlv/active")
        for _ in 0..<2500 where ((try? FS.listDirectory(active))?.isEmpty ?? true) { usleep(2000) }
        let follower = try MLVBinary.start(["logs", "--follow", "slow"], in: s.directory, environment: s.environment)
        let r = follower.wait()
        #expect(run.wait().status == 0)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines.map { $0.split(separator: " ", maxSplits: 1).last.map(String.init) } == ["out one", "out two"], "\(r)")
    }
}
