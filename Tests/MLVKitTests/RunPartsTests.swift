import MLVBasics
@testable import MLVKit
import MLVModel
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The terminal log format: lines split across reads, a partial last line, CR, CRLF,
/// binary bytes, and the cap on a line with no newline.
@Suite struct TerminalLogFormatterTests {
    func run(_ pieces: [(TerminalLogFormatter.Stream, [UInt8], String)], finish: String = "T9",
             maxLine: Int = TerminalLogFormatter.maxLine) -> [UInt8] {
        var f = TerminalLogFormatter(maxLine: maxLine)
        var out: [UInt8] = []
        for (s, bytes, t) in pieces { bytes.withUnsafeBytes { f.feed(s, $0, time: Array(t.utf8), into: &out) } }
        f.finish(time: Array(finish.utf8), into: &out)
        return out
    }

    func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    @Test func linesSplitAcrossReadsKeepTheTimeTheirFirstByteArrived() {
        let out = run([(.out, Array("hel".utf8), "T1"), (.out, Array("lo\nwor".utf8), "T2"), (.out, Array("ld\n".utf8), "T3")])
        #expect(text(out) == "T1 out hello\nT2 out world\n")
    }

    @Test func streamsAreKeptApartAndAPartialLastLineIsWrittenAtTheEnd() {
        let out = run([(.out, Array("a".utf8), "T1"), (.err, Array("e1\ne2".utf8), "T2"), (.out, Array("b\nc".utf8), "T3")])
        #expect(text(out) == "T2 err e1\nT1 out ab\nT3 out c\nT2 err e2\n")
    }

    @Test func carriageReturnsEndLinesAndCRLFIsOneEnd() {
        #expect(text(run([(.out, Array("10%\r20%\r100%\n".utf8), "T1")])) == "T1 out 10%\nT1 out 20%\nT1 out 100%\n")
        #expect(text(run([(.out, Array("a\r\nb\r\n".utf8), "T1")])) == "T1 out a\nT1 out b\n")
        // CR at the end of one read and LF at the start of the next are still one end.
        #expect(text(run([(.out, Array("a\r".utf8), "T1"), (.out, Array("\nb\n".utf8), "T2")])) == "T1 out a\nT2 out b\n")
        #expect(text(run([(.out, Array("\n\n".utf8), "T1")])) == "T1 out \nT1 out \n")
    }

    @Test func binaryBytesAreCopiedAsTheyAre() {
        let payload: [UInt8] = [0, 0xFF, 0xFE, 0x80, 7, 10, 0xC3]
        let out = run([(.err, payload, "T")])
        #expect(out == Array("T err ".utf8) + [0, 0xFF, 0xFE, 0x80, 7, 10] + Array("T err ".utf8) + [0xC3, 10])
    }

    @Test func aLineWithoutNewlinesIsCutAtTheCap() {
        let out = run([(.out, [UInt8](repeating: 65, count: 10), "T1"), (.out, [UInt8](repeating: 66, count: 3), "T2")], maxLine: 4)
        #expect(text(out) == "T1 out AAAA\nT1 out AAAA\nT1 out AABB\nT2 out B\n")
        // The same cuts whatever the reads: a long line ending within one read is cut too,
        // and a line of exactly the cap is one line however its newline arrives.
        let whole = run([(.out, Array("AAAAAAAAAA\nBBBB\n".utf8), "T1")], maxLine: 4)
        let bytewise = run(Array("AAAAAAAAAA\nBBBB\n".utf8).map { (.out, [$0], "T1") }, maxLine: 4)
        #expect(text(whole) == "T1 out AAAA\nT1 out AAAA\nT1 out AA\nT1 out BBBB\n")
        #expect(bytewise == whole)
        #expect(text(run([(.out, Array("AA".utf8), "T1"), (.out, Array("AAAAA\n".utf8), "T2")], maxLine: 4)) == "T1 out AAAA\nT2 out AAA\n")
    }

    @Test func nothingInNothingOut() {
        #expect(run([]).isEmpty)
        #expect(run([(.out, [], "T1")]).isEmpty)
    }
}

@Suite struct RedactionTests {
    @Test func secretNamesAreRedactedWhateverTheirValue() {
        let env = Redaction.environment([
            "AWS_SECRET_ACCESS_KEY": "x", "github_token": "short", "DB_PASSWORD": "hunter2", "MyCredentialFile": "/a",
            "API_KEY": "", "HOME": "/root", "LANG": "C.UTF-8",
        ])
        for name in ["AWS_SECRET_ACCESS_KEY", "github_token", "DB_PASSWORD", "MyCredentialFile", "API_KEY"] {
            #expect(env[name] == Redaction.marker, "\(name)")
        }
        #expect(env["HOME"] == "/root")
        #expect(env["LANG"] == "C.UTF-8")
    }

    @Test(arguments: [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_0123456789abcdefghijABCDEFGHIJ012345",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "xoxb-123456789012-abcdefghijklmnop",
        "sk-proj-abcdefghijklmnopqrstuvwxyz012345",
        "hf_abcdefghijklmnopqrstuvwxyzABCDEF",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "token=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u",
    ])
    func credentialLookingValuesAreRedacted(_ value: String) {
        #expect(Redaction.redactValue(value) == Redaction.marker, "\(value)")
    }

    @Test(arguments: [
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/root/.pyenv/shims",
        "rs=0:di=01;34:ln=01;36:mh=00:pi=40;33:so=01;35:do=01;35:bd=40;33;01",
        "C.UTF-8", "xterm-256color", "/home/someone/projects/a-rather-long-directory-name/with/more/parts",
        "--lr 0.01 --epochs 10 --batch-size 128", "https://pypi.org/simple",
    ])
    func ordinaryValuesStay(_ value: String) {
        #expect(Redaction.redactValue(value) == value, "\(value)")
    }

    @Test func credentialsInURLsAreRemoved() {
        #expect(Redaction.redactValue("postgres://app:s3cret@db.internal:5432/prod") == "postgres://<redacted>@db.internal:5432/prod")
        #expect(Redaction.stripURLCredentials("https://user:tok@github.com/a/b.git") == "https://github.com/a/b.git")
        #expect(Redaction.stripURLCredentials("https://tok@host/x@y") == "https://host/x@y")
        #expect(Redaction.stripURLCredentials("git@github.com:a/b.git") == "git@github.com:a/b.git")
        #expect(Redaction.stripURLCredentials("a https://u:p@h/ and http://v:q@i") == "a https://h/ and http://i")
    }
}

@Suite struct MetricLinesTests {
    @Test func everyNumberButStepAndTimeIsAMetric() throws {
        let points = try MetricLines.parse(Array(#"{"step": 3, "loss": 0.4, "acc": 1}"#.utf8), arrival: "T").get()
        #expect(points == [MetricPoint(name: "acc", step: 3, time: "T", value: 1), MetricPoint(name: "loss", step: 3, time: "T", value: 0.4)])
        let timed = try MetricLines.parse(Array(#"{"time": "2026-11-27T01:00:00.000Z", "x": -2.5e-3}"#.utf8), arrival: "T").get()
        #expect(timed == [MetricPoint(name: "x", time: "2026-11-27T01:00:00.000Z", value: -0.0025)])
        #expect(String(decoding: timed[0].line, as: UTF8.self) == #"{"name":"x","time":"2026-11-27T01:00:00.000Z","value":-0.0025}"# + "\n")
        #expect(try MetricPoint(seriesLine: Array(timed[0].line.dropLast())) == timed[0])
    }

    @Test(arguments: [
        ("{bad", "not JSON"), ("[1, 2]", "not a JSON object"), (#"{"loss": "low"}"#, "'loss' is not a number"),
        (#"{"step": 1.5, "loss": 1}"#, "'step' is not an integer"), (#"{"step": 2}"#, "no metric"),
        (#"{"time": 5, "a": 1}"#, "'time' is not a string"),
    ])
    func badLinesSayWhy(_ line: String, _ reason: String) {
        guard case .failure(let r) = MetricLines.parse(Array(line.utf8), arrival: "T") else {
            Issue.record("'\(line)' parsed"); return
        }
        #expect(r.text.contains(reason), "\(r)")
    }

    @Test func aSeriesSkipsBadLinesWithTheirNumbersAndKeepsTheLastValues() throws {
        let dir = try Scenario.makeDirectory(prefix: "mlv-series")
        defer { Scenario.removeTree(dir) }
        let series = try MetricSeries(path: dir + "/series.jsonl")
        let lines = [#"{"step":1,"loss":0.5}"#, "", "oops", #"{"step":2,"loss":0.25,"acc":0.9}"#]
        for (i, l) in lines.enumerated() { try series.take(Array(l.utf8), file: "m.jsonl", number: i + 1, arrival: "T") }
        try series.close()
        #expect(series.problems.map(\.line) == [3])
        #expect(series.problems.first?.description.hasPrefix("m.jsonl:3: not JSON") == true)
        #expect(series.last == ["loss": 0.25, "acc": 0.9])
        #expect(series.points == 3)
        let stored = String(decoding: try FS.readFile(dir + "/series.jsonl"), as: UTF8.self).split(separator: "\n")
        #expect(stored.count == 3)
        #expect(stored[0] == #"{"name":"loss","step":1,"time":"T","value":0.5}"#)
    }

    @Test func assignmentsAreChecked() throws {
        #expect(try MetricLines.parseAssignments(["loss=0.31", "acc=9.2e-1"]).map(\.value) == [0.31, 0.92])
        for bad in [["loss"], ["loss=abc"], ["step=3"], ["a=1", "a=2"], [], ["x=inf"]] {
            #expect(throws: MLVError.self) { try MetricLines.parseAssignments(bad) }
        }
        let line = MetricLines.encode([("loss", 0.5)], step: 4, time: "T")
        #expect(String(decoding: line, as: UTF8.self) == #"{"loss":0.5,"step":4,"time":"T"}"# + "\n")
    }

    @Test func aTailHandsOnCompleteLinesAndTheLastOneAtTheEnd() throws {
        let dir = try Scenario.makeDirectory(prefix: "mlv-tail")
        defer { Scenario.removeTree(dir) }
        let path = dir + "/m"
        try Scenario.write(.text("a\nb"), at: path)
        let tail = LineTail(path: path)
        var got: [String] = []
        try tail.poll { line, n in got.append("\(n):\(String(decoding: line, as: UTF8.self))") }
        #expect(got == ["1:a"])
        try Scenario.write(.text("a\nbc\nd"), at: path)
        try tail.poll(final: true) { line, n in got.append("\(n):\(String(decoding: line, as: UTF8.self))") }
        #expect(got == ["1:a", "2:bc", "3:d"])
    }
}

@Suite struct ProcParseTests {
    @Test func statCountsFieldsFromTheLastParenthesis() {
        let line = "4242 (my (odd) prog) S 17 4242 4242 0 -1 4194560 500 0 0 0 120 30 5 7 20 0 3 0 12345 1000000 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
        #expect(ProcParse.stat(line) == ProcessStat(pid: 4242, ppid: 17, ticks: 120 + 30 + 5 + 7, rssPages: 2560))
        #expect(ProcParse.stat("garbage") == nil)
        #expect(ProcParse.stat("1 (x) S 0") == nil)
    }

    @Test func treeFollowsParentLinks() {
        let all = [ProcessStat(pid: 1, ppid: 0, ticks: 1, rssPages: 1), ProcessStat(pid: 10, ppid: 1, ticks: 2, rssPages: 2),
                   ProcessStat(pid: 11, ppid: 10, ticks: 3, rssPages: 3), ProcessStat(pid: 12, ppid: 11, ticks: 4, rssPages: 4),
                   ProcessStat(pid: 20, ppid: 1, ticks: 5, rssPages: 5)]
        #expect(Set(ProcParse.tree(of: 10, in: all).map(\.pid)) == [10, 11, 12])
        #expect(ProcParse.tree(of: 99, in: all).isEmpty)
    }

    @Test func ioNetCpuAndMemory() {
        let io = "rchar: 100\nwchar: 200\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n"
        #expect(ProcParse.io(io)! == (4096, 8192))
        #expect(ProcParse.io("rchar: 1\n") == nil)
        let net = """
            Inter-|   Receive                                                |  Transmit
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
                lo: 999999     10    0    0    0     0          0         0   999999     10    0    0    0     0       0          0
              eth0: 1000      5    0    0    0     0          0         0     2000      6    0    0    0     0       0          0
              eth1:  500      5    0    0    0     0          0         0       30      6    0    0    0     0       0          0
            """
        #expect(ProcParse.netDev(net) == (1500, 2030))
        let cpu = "processor\t: 0\nmodel name\t: Example CPU @ 2.00GHz\ncpu cores\t: 2\n\nprocessor\t: 1\nmodel name\t: Example CPU @ 2.00GHz\n"
        let info = ProcParse.cpuInfo(cpu)
        #expect(info.model == "Example CPU @ 2.00GHz")
        #expect(info.cores == 2)
        #expect(ProcParse.memTotal("MemTotal:       24554372 kB\nMemFree:  1 kB\n") == Int64(24554372) * 1024)
        #expect(ProcParse.nvidiaUsage("42, 1024\n7, 0\nbad\n") == [GPUSample(util: 42, memory: 1 << 30), GPUSample(util: 7, memory: 0)])
    }

    @Test func aSampleLineIsCanonicalJSON() {
        let s = SystemSample(time: "T", cpu: 12.345, rss: 10, readBytes: 1, writeBytes: 2, netRx: 3, netTx: 4,
                             gpu: [GPUSample(util: 50, memory: 5)])
        #expect(String(decoding: s.line, as: UTF8.self)
                == #"{"cpu":12.3,"gpu":[{"memory":5,"util":50}],"netRx":3,"netTx":4,"readBytes":1,"rss":10,"time":"T","writeBytes":2}"# + "\n")
    }

    @Test func pythonIsDetectedByProgramOrScript() {
        #expect(RunEnvironment.runsPython(["python3", "train.py"]))
        #expect(RunEnvironment.runsPython(["/usr/bin/python3.12", "-c", "1"]))
        #expect(RunEnvironment.runsPython(["./train.py"]))
        #expect(!RunEnvironment.runsPython(["sh", "-c", "python x.py"]))
        #expect(RunLauncher.defaultName(["python", "-u", "src/train.py", "--lr", "1"]) == "train")
        #expect(RunLauncher.defaultName(["/bin/sh", "-c", "x"]) == "sh")
    }

    @Test func outputSpecsAreParsed() throws {
        #expect(try RunOutputSpec(parsing: "model:digits=out/m.bin") == RunOutputSpec(kind: .model, name: "digits", path: "out/m.bin"))
        #expect(try RunOutputSpec(parsing: "dataset:d=a=b").path == "a=b")
        for bad in ["digits=out", "tensor:x=a", "model:=a", "model:x=", "model:Bad Name=a"] {
            #expect(throws: MLVError.self) { try RunOutputSpec(parsing: bad) }
        }
    }
}

@Suite struct ActiveRunGCTests {
    /// The code snapshot a run commits before its command starts stays through gc while
    /// the run's active directory names it, and goes once that is gone.
    @Test func gcKeepsAnActiveRunsCodeSnapshot() throws {
        let t = try TestRepository()
        let repo = t.repository
        try Scenario.write(.text("x = 1\n"), at: t.path("prep.py"))
        let writer = repo.objects.writer()
        let snapshot = try repo.snapshotCode([t.path("prep.py")], writer: writer)
        try writer.commit()
        let active = repo.storePath + "/active/0123456789abcdef"
        try FS.makeDirectories(active)
        try FS.atomicWrite(active + "/state", JSON.object(["run": .string("0123456789abcdef"), "code": .string(snapshot.id.hex)]).canonicalBytes())
        _ = try repo.gc(graceSeconds: 0, dryRun: false)
        try repo.objects.reload()
        #expect(repo.objects.contains(snapshot.id))
        try FS.removeTree(active)
        _ = try repo.gc(graceSeconds: 0, dryRun: false)
        try repo.objects.reload()
        #expect(!repo.objects.contains(snapshot.id))
    }
}

@Suite struct GrowingBlobTests {
    /// A file stored while it grows has the id and the bytes of the finished file, and
    /// the same chunks as storing it at once.
    @Test(arguments: [0, 100, 3_000_000])
    func aGrowingFileIsStoredAsTheFinishedFile(size: Int) throws {
        let t = try TestRepository()
        let repo = t.repository
        let bytes = splitmix64Bytes(seed: UInt64(size) + 7, count: size)
        let pieces = splitmix64Bytes(seed: 99, count: 64)
        let path = t.path("growing.log")
        try Scenario.write(.text(""), at: path)
        let writer = repo.objects.writer()
        let blob = try GrowingBlob(path: path, writer: writer, chunker: repo.config.chunker)
        blob.start(intervalMilliseconds: 1)
        let fd = try FS.open(path, O_WRONLY | O_APPEND)
        var at = 0, k = 0
        while at < bytes.count {
            let n = min(bytes.count - at, 1 + Int(pieces[k % 64]) * 1_500)
            k += 1
            try bytes[at..<(at + n)].withUnsafeBytes { try FS.writeAll(fd, $0, path: path) }
            at += n
            usleep(500)
        }
        FS.close(fd)
        let id = try blob.finish()
        try writer.commit()
        #expect(id == SHA256.hash(bytes))
        var back: [UInt8] = []
        try repo.readBlob(id) { back.append(contentsOf: $0) }
        #expect(back == bytes)
        let other = repo.objects.writer()
        #expect(try repo.storeBlob(bytes, writer: other) == id)
        #expect(other.written.objects == 0, "storing the finished file at once finds every chunk already stored")
        other.abort()
    }
}

@Suite struct IdleCompressorTests {
    /// Whatever the compressing thread reached before `finish` (compressed) and whatever it
    /// did not (raw: over the backlog limit, or still waiting), every chunk is stored once
    /// and reads back as its bytes.
    @Test(arguments: [0, 100_000, 1 << 30])
    func everyChunkIsStoredCompressedOrRaw(backlogLimit: Int) throws {
        let t = try TestRepository()
        let repo = t.repository
        let writer = repo.objects.writer()
        let compressor = IdleCompressor(writer: writer, backlogLimit: backlogLimit)
        var chunks: [[UInt8]] = []
        for i in 0..<24 {
            let text = (0..<2_000).map { "\(i) step \($0) loss \(1.0 / Double($0 + 1))\n" }.joined()
            chunks.append(Array(text.utf8))
        }
        chunks.append(chunks[3])
        for c in chunks { try c.withUnsafeBytes { try compressor.put(SHA256.hash($0), $0) } }
        try compressor.finish()
        if backlogLimit == 0 {
            #expect(compressor.storedRaw.count == 24, "every chunk raw, each noted once for gc")
        }
        try writer.commit()
        try repo.objects.reload()
        for c in chunks {
            let id = c.withUnsafeBytes { SHA256.hash($0) }
            var back: [UInt8] = []
            try repo.readBlob(id) { back.append(contentsOf: $0) }
            #expect(back == c)
        }
    }
}

@Suite struct DeferredCompressionTests {
    /// A run log chunk stored raw and noted in `deferred-compression` is compressed by gc
    /// once its pack is past the grace period; the blob reads back the same, the note
    /// goes away, and a pack within the grace period keeps its note for later.
    @Test func gcCompressesNotedRawLogChunks() throws {
        let t = try TestRepository()
        let repo = t.repository
        let text = Array((0..<400).map { "2026-11-27T01:00:00.000Z out step \($0) loss \(1.0 / Double($0 + 1))\n" }.joined().utf8)
        let id = text.withUnsafeBytes { SHA256.hash($0) }
        let writer = repo.objects.writer()
        _ = try text.withUnsafeBytes { try writer.put(id, kind: .chunk, bytes: $0, compression: .never) }
        try writer.commit()
        try repo.recordRun(RunManifest(run: "00000000000000d1", name: "chatty", command: ["awk"], cwd: ".",
                                       started: "2026-11-27T01:00:00.000Z", ended: "2026-11-27T01:00:01.000Z",
                                       status: .succeeded, exitCode: 0, log: id, author: "tester@example"))
        repo.noteDeferredCompression([id])
        try repo.objects.reload()
        func compressed() -> Bool {
            repo.objects.packIndexes.flatMap(\.entries).first { $0.id == id }?.isCompressed == true
        }
        #expect(!compressed())

        let young = try repo.gc(graceSeconds: 3600, dryRun: false)
        #expect(young.chunksCompressed == 0 && !compressed())
        #expect(repo.deferredCompression() == [id], "kept for a later gc")

        let dry = try repo.gc(graceSeconds: 0, dryRun: true)
        #expect(dry.chunksCompressed == 1 && !compressed())

        let done = try repo.gc(graceSeconds: 0, dryRun: false)
        #expect(done.chunksCompressed == 1 && done.bytesSavedByCompression > Int64(text.count / 2))
        try repo.objects.reload()
        #expect(compressed())
        #expect(repo.deferredCompression().isEmpty)
        var back: [UInt8] = []
        try repo.readBlob(id) { back.append(contentsOf: $0) }
        #expect(back == text)
        #expect(repo.fsck(full: true).isClean)
    }
}

@Suite struct GitDiscoveryTests {
    /// `mlv run` asks git only where git could find a work tree: a `.git` directory or
    /// file (a linked work tree's) in the directory or above it.
    @Test func aGitEntryInTheDirectoryOrAboveMeansAskGit() throws {
        let t = try TemporaryDirectory()
        let deep = t.path + "/a/b/c"
        try FS.makeDirectories(deep)
        // Outside any work tree (checked by asking git itself, so the test holds wherever
        // the temporary directory is).
        let gitFinds = Git.run(["rev-parse", "--show-toplevel"], in: deep) != nil
        #expect(Git.mayBeInWorkTree(deep) == gitFinds)
        try FS.makeDirectories(t.path + "/a/.git")
        #expect(Git.mayBeInWorkTree(deep))
        #expect(Git.mayBeInWorkTree(t.path + "/a"))
        try FS.removeTree(t.path + "/a/.git")
        try Scenario.write(.text("gitdir: /elsewhere\n"), at: t.path + "/a/b/.git")
        #expect(Git.mayBeInWorkTree(deep))
    }
}
