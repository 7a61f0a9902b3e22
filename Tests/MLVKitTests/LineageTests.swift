import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A small pipeline recorded the way `mlv run` records one: raw data, a prep run writing
/// a cleaned dataset, a train run writing a model, an eval run reading it.
struct Pipeline {
    let t: TestRepository
    var repo: Repository { t.repository }
    var raw: ObjectID
    var clean: ObjectID
    var model: ObjectID
    var snapshot: ObjectID
    let prepRun = "00000000000000a1", trainRun = "00000000000000b2", evalRun = "00000000000000c3"

    init(commits: [String: String] = [:]) throws {
        t = try TestRepository()
        try t.write("raw", ["a.csv": "x,y\n1,2\n"])
        try t.write("src/prep.py", .text("x = x / 255\n"))
        try t.write("clean", ["train/a.csv": "1\n", "eval/b.csv": "2\n"])
        try t.write("out", ["model.bin": .random(seed: 1, count: 100)])
        let repo = t.repository
        raw = try repo.addDataset(AddDatasetRequest(name: "raw", path: t.path("raw"))).id
        // The prep run: code snapshot, output manifest (naming the run), then the run.
        var cleanRequest = AddDatasetRequest(name: "scratch", path: t.path("clean"))
        cleanRequest.code = [t.path("src/prep.py")]
        cleanRequest.splits = ["train": "train", "eval": "eval"]
        let scratch = try repo.datasetManifest(repo.addDataset(cleanRequest).id)
        snapshot = scratch.inputs.first { $0.role == "code" }!.id
        clean = try Self.version(repo, .dataset, DatasetManifest(
            name: "clean", root: scratch.root, files: 2, bytes: 4, inputs: [Input(role: "raw", id: raw)], splits: scratch.splits,
            message: "", meta: [:], author: "t", created: "2026-01-01T00:00:01Z", source: "clean", run: prepRun).canonicalBytes())
        try repo.recordRun(Self.run(prepRun, "prep", inputs: [Input(role: "raw", id: raw)],
                                    outputs: [RunOutput(kind: "dataset", name: "clean", path: "clean", id: clean, status: .stored)],
                                    code: RunCode(commit: commits["prep"], snapshot: snapshot)))
        let modelRoot = try repo.modelManifest(repo.addModel(AddModelRequest(name: "scratch-model", path: t.path("out"))).id).root
        let trainInputs = [Input(role: "train", id: clean, split: "train"), Input(role: "eval", id: clean, split: "eval")]
        model = try Self.version(repo, .model, ModelManifest(
            name: "digits", root: modelRoot, files: 1, bytes: 100, inputs: trainInputs, message: "", meta: [:], author: "t",
            created: "2026-01-01T00:00:02Z", source: "out", run: trainRun).canonicalBytes())
        try repo.recordRun(Self.run(trainRun, "train", inputs: trainInputs,
                                    outputs: [RunOutput(kind: "model", name: "digits", path: "out", id: model, status: .stored)],
                                    code: RunCode(commit: commits["train"], snapshot: snapshot)))
        try repo.recordRun(Self.run(evalRun, "eval", inputs: [Input(role: "model", id: model), Input(role: "eval", id: clean, split: "eval")],
                                    outputs: [], code: nil))
    }

    static func run(_ id: String, _ name: String, inputs: [Input], outputs: [RunOutput], code: RunCode?) -> RunManifest {
        RunManifest(run: id, name: name, command: ["python3", name + ".py"], cwd: ".", started: "2026-01-01T00:00:00Z",
                    ended: "2026-01-01T00:00:05Z", status: .succeeded, exitCode: 0, params: ["lr": "0.1"],
                    metrics: ["acc": 0.9], inputs: inputs, outputs: outputs, code: code, author: "t")
    }

    /// Stores manifest bytes and creates the next version ref of its name, as a writer
    /// that bypasses `add` would.
    @discardableResult
    static func version(_ repo: Repository, _ kind: ArtifactKind, _ bytes: [UInt8]) throws -> ObjectID {
        let id = try store(repo, bytes)
        let name = try JSON.parse(bytes)["name"]!.string!
        _ = try repo.refs.createNextVersion(kind: kind.rawValue, name: name, id: id)
        return id
    }

    @discardableResult
    static func store(_ repo: Repository, _ bytes: [UInt8]) throws -> ObjectID {
        let id = SHA256.hash(bytes)
        let writer = repo.objects.writer()
        try writer.put(id, kind: .manifest, bytes: bytes, compression: .always)
        try writer.commit()
        return id
    }
}

/// What a blame result says, in a form two results can be compared by.
func summary(_ r: BlameResult) -> [String] {
    r.affected.map { "\($0.node.kind.rawValue) \($0.node.display) \($0.stages) \(r.path($0))" } + r.problems
}

func summary(_ g: LineageGraph) -> [String] {
    g.order.map(g.display) + g.edges.map { "\($0.parent)>\($0.child):\($0.role):\($0.split ?? "")" }.sorted() + g.problems
}

@Suite struct LineageTests {
    @Test func blameFindsEverythingDownstreamWithStagesAndPaths() throws {
        let p = try Pipeline()
        try p.repo.promote("digits@v1", to: "production", message: "ship")
        let r = try p.repo.blame(.ref("raw@v1"))
        #expect(r.affected.map(\.node.display) == ["clean@v1", "run eval (00000000)", "run prep (00000000)", "run train (00000000)", "model:digits@v1"])
        let m = r.affected.last!
        #expect(m.stages == ["production"])
        #expect(r.path(m) == ["raw@v1", "clean@v1", "model:digits@v1"], "the shortest path")
        #expect(r.holds("production"))
        #expect(!r.holds("staging"))
    }

    /// Threshold 2048: the index looks rows and edges up level by level; 1: it reads
    /// whole tables at the first level (what a walk over a large history does).
    @Test(arguments: [2048, 1]) func theIndexAndTheManifestsGiveTheSameAnswers(wholeTableThreshold: Int) throws {
        let p = try Pipeline()
        let memory = try p.repo.scanLineage()
        let index = try #require(try p.repo.lineage() as? LineageIndex)
        index.wholeTableThreshold = wholeTableThreshold
        for target in [BlameTarget.ref("raw@v1"), .ref("clean@v1#eval"), .ref(p.snapshot.hex), .ref("00000000000000b2"),
                       .contains(file: "src/prep.py", text: "/ 255"), .ref(SHA256.hash(Array("x = x / 255\n".utf8)).hex)] {
            let a = try p.repo.blame(target, source: index), b = try p.repo.blame(target, source: memory)
            #expect(summary(a) == summary(b), "\(target)")
            #expect(!a.affected.isEmpty, "\(target)")
            #expect(a.jsonBytes == a.json.canonicalBytes(), "\(target)")
            #expect(b.jsonBytes == a.jsonBytes, "\(target)")
        }
        for key in Array(memory.nodeMap.keys) {
            for d in [LineageDirection.up, .down, .both] {
                #expect(summary(try p.repo.walkLineage(index, from: [key], d)) == summary(try p.repo.walkLineage(memory, from: [key], d)))
            }
        }
        #expect(Set(try index.runCommits().map(\.key)) == Set(memory.runCommits().map(\.key)))
    }

    /// A large walk keeps the whole index as a snapshot blob; a write makes it stale (the
    /// generation moves on) and a damaged one is read as absent, so neither changes an answer.
    @Test func theSnapshotOfTheWholeIndexIsUsedOnlyWhileCurrent() throws {
        let p = try Pipeline()
        func whole() throws -> LineageIndex {
            let index = try #require(try p.repo.lineage() as? LineageIndex)
            index.wholeTableThreshold = 1
            return index
        }
        func snapshots(_ index: LineageIndex) throws -> Int {
            var n = 0
            try index.db.prepare("SELECT count(*) FROM snapshot").forEachRow { n = Int($0.int(0)) }
            return n
        }
        let first = try whole()
        #expect(try snapshots(first) == 0)
        let before = try p.repo.blame(.ref("raw@v1"), source: first)
        #expect(try snapshots(first) == 1, "stored after the walk")
        var decoded: WholeLineage?
        try first.db.prepare("SELECT data FROM snapshot").forEachRow { s in decoded = s.blob(0).withUnsafeBytes { WholeLineage(decoding: $0) } }
        let stored = try #require(decoded, "the stored blob decodes")
        let nodeCount = try p.repo.scanLineage().nodeMap.count
        #expect((0..<stored.rows.count).compactMap(stored.rows.node).count == nodeCount)
        #expect(summary(try p.repo.blame(.ref("raw@v1"), source: whole())) == summary(before))
        // A new dataset read from raw@v1, written behind the open index's back.
        let run = "00000000000000e5"
        let ds = try Pipeline.version(p.repo, .dataset, DatasetManifest(
            name: "later", root: try p.repo.datasetManifest(p.raw).root, files: 1, bytes: 8, inputs: [Input(role: "raw", id: p.raw)],
            splits: [:], message: "", meta: [:], author: "t", created: "2026-01-05T00:00:00Z", source: "x", run: run).canonicalBytes())
        try p.repo.recordRun(Pipeline.run(run, "later", inputs: [Input(role: "raw", id: p.raw)],
                                          outputs: [RunOutput(kind: "dataset", name: "later", path: "x", id: ds, status: .stored)], code: nil))
        let after = try p.repo.blame(.ref("raw@v1"), source: whole())
        #expect(after.affected.contains { $0.display == "later@v1" })
        #expect(summary(after) == summary(try p.repo.blame(.ref("raw@v1"), source: p.repo.scanLineage())))
        #expect(summary(try p.repo.blame(.ref("raw@v1"), source: first)) == summary(after), "an open index drops what it read")
        // A damaged blob of the current generation is read as absent.
        let damaged = try whole()
        try damaged.db.execute("UPDATE snapshot SET data = x'0100000000000000ff'")
        #expect(summary(try p.repo.blame(.ref("raw@v1"), source: damaged)) == summary(after))
        #expect(summary(try p.repo.blame(.ref("raw@v1"), source: whole())) == summary(after))
    }

    /// After a large walk stored the snapshot, each changing sync stores a delta; the
    /// next large walk reads the snapshot and applies the deltas (giving what the tables
    /// hold), and falls back to the tables when the chain of deltas has a gap or a damaged
    /// link, so neither changes an answer.
    @Test func deltasKeepTheSnapshotCurrentAcrossWrites() throws {
        let p = try Pipeline()
        func whole() throws -> LineageIndex {
            let index = try #require(try p.repo.lineage() as? LineageIndex)
            index.wholeTableThreshold = 1
            return index
        }
        func count(_ index: LineageIndex, _ sql: String) throws -> Int {
            var n = 0
            try index.db.prepare(sql).forEachRow { n = Int($0.int(0)) }
            return n
        }
        func baseGeneration(_ index: LineageIndex) throws -> Int { try count(index, "SELECT CAST(generation AS INTEGER) FROM snapshot") }
        var later = 0
        /// A new dataset read from raw@v1 and the run that wrote it, as a writer would add them.
        func write() throws {
            later += 1
            let run = "00000000000000" + String(later + 0xe0, radix: 16)
            let ds = try Pipeline.version(p.repo, .dataset, DatasetManifest(
                name: "later", root: try p.repo.datasetManifest(p.raw).root, files: 1, bytes: 8,
                inputs: [Input(role: "raw", id: p.raw), Input(role: "prev", id: SHA256.hash(Array("gone \(later)".utf8)))],
                splits: [:], message: "", meta: [:], author: "t", created: "2026-01-05T00:00:0\(later)Z", source: "x",
                run: run).canonicalBytes())
            try p.repo.recordRun(Pipeline.run(run, "later", inputs: [Input(role: "raw", id: p.raw)],
                                              outputs: [RunOutput(kind: "dataset", name: "later", path: "x", id: ds, status: .stored)],
                                              code: nil))
        }
        func expectSameAsTables(_ index: LineageIndex, _ comment: Comment) throws {
            let a = try index.wholeLineage(), b = try index.readTables()
            #expect(a.rowOf.count == b.rowOf.count, comment)
            for h in 0..<min(a.rowOf.count, b.rowOf.count) {
                let (ra, rb) = (Int(a.rowOf[h]), Int(b.rowOf[h]))
                #expect((ra < 0) == (rb < 0), comment)
                guard ra >= 0, rb >= 0 else { continue }
                #expect(a.rows.key(ra) == b.rows.key(rb) && a.rows.node(ra) == b.rows.node(rb), comment)
            }
            for (x, y) in [(a.up, b.up), (a.down, b.down)] {
                #expect(x.start == y.start && x.other == y.other && x.label == y.label, comment)
            }
        }
        func expectRightAnswer(_ comment: Comment) throws {
            let answer = try p.repo.blame(.ref("raw@v1"), source: whole())
            #expect(summary(answer) == summary(try p.repo.blame(.ref("raw@v1"), source: p.repo.scanLineage())), comment)
            #expect(answer.affected.filter { $0.display.hasPrefix("later@") }.count == later, "\(comment): \(answer.affected.map(\.display))")
        }
        _ = try p.repo.blame(.ref("raw@v1"), source: whole())
        let first = try baseGeneration(whole())
        #expect(try count(whole(), "SELECT count(*) FROM snapshot_delta") == 0)

        // Two writes: two deltas on the same snapshot, applied in order.
        try write()
        try write()
        let index = try whole()
        #expect(try count(index, "SELECT count(*) FROM snapshot_delta") >= 2)
        try expectSameAsTables(index, "snapshot and deltas")
        try expectRightAnswer("snapshot and deltas")
        #expect(try baseGeneration(whole()) == first, "the snapshot was not read again from the tables")

        // A gap in the chain (a writer that stored no delta): the tables are read.
        try write()
        let gapAt = try count(whole(), "SELECT max(generation) FROM snapshot_delta")
        try write()
        let gap = try whole()
        #expect(try count(gap, "SELECT max(generation) FROM snapshot_delta") > gapAt)
        try gap.db.execute("DELETE FROM snapshot_delta WHERE generation = \(gapAt)")
        try expectRightAnswer("a gap in the chain")
        #expect(try baseGeneration(whole()) > first, "read from the tables and stored again")
        #expect(try count(whole(), "SELECT count(*) FROM snapshot_delta") == 0, "deltas up to the new snapshot dropped")

        // A damaged delta: the tables are read.
        try write()
        let damaged = try whole()
        #expect(try count(damaged, "SELECT count(*) FROM snapshot_delta") >= 1)
        try damaged.db.execute("UPDATE snapshot_delta SET data = x'0100000000000000010000000000000001000000ff'")
        try expectRightAnswer("a damaged delta")

        // A change recorded in no delta (an edge inserted behind the sync's back): the
        // counts differ from the snapshot's and the tables are read.
        try write()
        let unrecorded = try whole()
        #expect(try count(unrecorded, "SELECT count(*) FROM snapshot_delta") >= 1)
        try unrecorded.db.execute("""
            INSERT INTO edges(parent, child, label) SELECT a.n, b.n, 0 FROM nodes a, nodes b
            WHERE a.key = '\(p.raw.hex)' AND b.key = '\(p.evalRun)'
            """)
        let extra = try p.repo.blame(.ref("raw@v1"), source: unrecorded)
        #expect(extra.affected.first { $0.node.key == p.evalRun }.map(extra.path) == ["raw@v1", "run eval (00000000)"],
                "the unrecorded edge is walked")
        try unrecorded.db.execute("""
            DELETE FROM edges WHERE label = 0 AND parent = (SELECT n FROM nodes WHERE key = '\(p.raw.hex)')
              AND child = (SELECT n FROM nodes WHERE key = '\(p.evalRun)');
            UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'generation'
            """)
        try expectRightAnswer("the tables read again once the generation moved on")

        // Many deltas: the walk that applies them stores a new snapshot.
        let base = try baseGeneration(whole())
        try write()
        try write()
        let many = try whole()
        many.deltasBeforeSnapshot = 2
        #expect(try count(many, "SELECT count(*) FROM snapshot_delta") >= 2)
        _ = try p.repo.blame(.ref("raw@v1"), source: many)
        #expect(try baseGeneration(whole()) > base)
        #expect(try count(whole(), "SELECT count(*) FROM snapshot_delta") == 0)
        try expectSameAsTables(try whole(), "the new snapshot")
        try expectRightAnswer("after the new snapshot")
    }

    @Test func deletingTheIndexChangesNoAnswer() throws {
        let p = try Pipeline()
        let before = summary(try p.repo.blame(.ref("raw@v1")))
        try FS.unlink(p.repo.lineageIndexPath)
        #expect(summary(try p.repo.blame(.ref("raw@v1"))) == before)
        #expect(FS.exists(p.repo.lineageIndexPath), "rebuilt on the first query")
        // A damaged index file is rebuilt too.
        try FS.atomicWrite(p.repo.lineageIndexPath, Array("not a database".utf8))
        #expect(summary(try p.repo.blame(.ref("raw@v1"))) == before)
        let report = try p.repo.reindex()
        #expect(report.counts["nodes"] == (try p.repo.scanLineage()).nodeMap.count)
        #expect(summary(try p.repo.blame(.ref("raw@v1"))) == before)
    }

    /// `reindex` rebuilds an existing index in place: a process that has the index open
    /// keeps writing to the index, not to a file renamed away under it (whose rollback
    /// journal, named after the path, the next opener of the new file would have taken
    /// for its own and rolled back into it).
    @Test func reindexRebuildsInPlaceUnderAnOpenConnection() throws {
        let p = try Pipeline()
        let before = summary(try p.repo.blame(.ref("raw@v1")))
        let path = p.repo.lineageIndexPath
        let inode = try #require(try FS.stat(path)).st_ino
        let other = try SQLiteDatabase(path: path)
        try other.prepare("SELECT count(*) FROM nodes").run()  // opened and read, no transaction left open
        let report = try p.repo.reindex()
        #expect(report.counts["nodes"] == (try p.repo.scanLineage()).nodeMap.count)
        #expect(try FS.stat(path)?.st_ino == inode, "the index file was replaced")
        try other.execute("INSERT INTO meta(key, value) VALUES('probe', 'x')")
        var probe: [String?] = []
        try SQLiteDatabase(path: path).prepare("SELECT value FROM meta WHERE key = 'probe'").forEachRow { probe.append($0.text(0)) }
        #expect(probe == ["x"], "a write through the open connection reached the index")
        #expect(summary(try p.repo.blame(.ref("raw@v1"))) == before)
    }

    @Test func refsCreatedBehindTheIndexBackAreFound() throws {
        let p = try Pipeline()
        _ = try p.repo.blame(.ref("raw@v1"))
        // A writer that never touches the index (an older mlv, a crash before the update).
        let bytes = DatasetManifest(name: "extra", root: try p.repo.datasetManifest(p.raw).root, files: 1, bytes: 8,
                                    inputs: [Input(role: "parent", id: p.raw)], splits: [:], message: "", meta: [:], author: "t",
                                    created: "2026-01-02T00:00:00Z", source: "x").canonicalBytes()
        try Pipeline.version(p.repo, .dataset, bytes)
        usleep(60_000)  // past the racy window: found by its directory signature, not because it is recent
        #expect(try p.repo.blame(.ref("raw@v1")).affected.contains { $0.node.display == "extra@v1" })
    }

    @Test func upstreamWalksShowCodeRunsAndDepthLimits() throws {
        let p = try Pipeline()
        let g = try p.repo.lineage(of: "digits@v1", .up)
        #expect(Set(g.nodes.values.map(\.display)) == ["model:digits@v1", "run train (00000000)", "clean@v1", "run prep (00000000)",
                                                        "raw@v1", "code \(p.snapshot.short) (src/prep.py)"])
        let one = try p.repo.lineage(of: "digits@v1", .up, depth: 1)
        #expect(Set(one.nodes.values.map(\.display)) == ["model:digits@v1", "run train (00000000)", "clean@v1"])
        let down = try p.repo.lineage(of: "clean@v1#train", .down)
        #expect(down.nodes.values.contains { $0.kind == .model }, "the train split reaches the model")
    }

    @Test func aCycleInHandEditedManifestsIsReportedAndTheWalkEnds() throws {
        let p = try Pipeline()
        // A run that names as input the dataset it wrote: clean -> run -> clean.
        let loop = "00000000000000d4"
        let ds = try Pipeline.version(p.repo, .dataset, DatasetManifest(
            name: "loop", root: try p.repo.datasetManifest(p.raw).root, files: 1, bytes: 8, inputs: [], splits: [:],
            message: "", meta: [:], author: "t", created: "2026-01-03T00:00:00Z", source: "x", run: loop).canonicalBytes())
        try p.repo.recordRun(Pipeline.run(loop, "loop", inputs: [Input(role: "raw", id: ds)],
                                          outputs: [RunOutput(kind: "dataset", name: "loop", path: "x", id: ds, status: .stored)], code: nil))
        let r = try p.repo.blame(.ref("loop@v1"))
        #expect(r.problems.contains { $0.contains("cycle") && $0.contains("loop@v1") }, "\(r.problems)")
        #expect(r.affected.map(\.node.display) == ["run loop (00000000)"])
        let up = try p.repo.lineage(of: "loop@v1", .up)
        #expect(!up.cycles.isEmpty)
        let whole = try #require(try p.repo.lineage() as? LineageIndex)
        whole.wholeTableThreshold = 1
        for source in [whole, try p.repo.scanLineage() as LineageSource] {
            let w = try p.repo.blame(.ref("loop@v1"), source: source)
            #expect(summary(w) == summary(r))
            #expect(w.jsonBytes == r.json.canonicalBytes())
        }
    }

    @Test func aMissingObjectMidWalkIsReportedAndWalkedAround() throws {
        let p = try Pipeline()
        let ghost = SHA256.hash(Array("never stored".utf8))
        let m = try Pipeline.version(p.repo, .model, ModelManifest(
            name: "mixed", root: try p.repo.modelManifest(p.model).root, files: 1, bytes: 100,
            inputs: [Input(role: "train", id: ghost), Input(role: "eval", id: p.clean, split: "eval")], message: "", meta: [:],
            author: "t", created: "2026-01-04T00:00:00Z", source: "x").canonicalBytes())
        let whole = try #require(try p.repo.lineage() as? LineageIndex)
        whole.wholeTableThreshold = 1
        for source in [try p.repo.lineage(), whole, try p.repo.scanLineage() as LineageSource] {
            let g = try p.repo.walkLineage(source, from: [m.hex], .up)
            #expect(g.missing == [ghost.hex])
            #expect(g.problems.contains { $0.contains(ghost.hex) && $0.contains("train of model:mixed@v1") }, "\(g.problems)")
            #expect(g.nodes.values.contains { $0.display == "raw@v1" }, "the walk went on past the missing input")
        }
    }

    @Test func badTargets() throws {
        let p = try Pipeline()
        let nothing = try p.repo.blame(.ref("0123456789abcdef0123"))
        #expect(nothing.affected.isEmpty && nothing.matched.isEmpty)
        expectMLVError({ if case .unknownRef = $0 { true } else { false } }, mentions: ["raww"]) { try p.repo.blame(.ref("raww@v1")) }
        try p.repo.recordRun(Pipeline.run("abcdef0000000001", "x", inputs: [], outputs: [], code: nil))
        try p.repo.recordRun(Pipeline.run("abcdef0000000002", "y", inputs: [], outputs: [], code: nil))
        expectMLVError({ if case .ambiguousPrefix = $0 { true } else { false } }, mentions: ["abcdef0000000001", "abcdef0000000002"]) {
            try p.repo.blame(.ref("abcdef"))
        }
        // Not a git repository (the temporary directory is outside any).
        expectMLVError({ if case .invalidArgument = $0 { true } else { false } }, mentions: ["git repository", p.t.directory]) {
            try p.repo.blame(.commit("abc123", fixed: nil))
        }
        expectMLVError({ if case .invalidArgument = $0 { true } else { false } }, mentions: ["git repository"]) {
            try p.repo.blame(.code(path: "src/prep.py", rev: "HEAD"))
        }
    }

    @Test func blameByGitCommitAndByCodeAtARevision() throws {
        let probe = try TestRepository()
        func git(_ args: String...) throws -> String {
            let out = try probe.repository.git(Array(args))
            #expect(out.status == 0, "git \(args)")
            return out.text
        }
        _ = try git("init", "-q")
        _ = try git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "base")
        let base = try git("rev-parse", "HEAD")
        _ = try git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "bad")
        let bad = try git("rev-parse", "HEAD")
        _ = try git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "between")
        let between = try git("rev-parse", "HEAD")
        _ = try git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "fix")
        let fix = try git("rev-parse", "HEAD")
        let repo = probe.repository
        try repo.recordRun(Pipeline.run("0000000000000001", "old", inputs: [], outputs: [], code: RunCode(commit: base)))
        try repo.recordRun(Pipeline.run("0000000000000002", "broken", inputs: [], outputs: [], code: RunCode(commit: between)))
        try repo.recordRun(Pipeline.run("0000000000000003", "fixed", inputs: [], outputs: [], code: RunCode(commit: fix)))
        try repo.recordRun(Pipeline.run("0000000000000004", "elsewhere", inputs: [], outputs: [],
                                        code: RunCode(commit: String(repeating: "e", count: 40))))
        let r = try repo.blame(.commit(String(bad.prefix(10)), fixed: fix))
        #expect(r.affected.map(\.node.name) == ["broken"])
        #expect(r.problems.contains { $0.contains("eeeeeeee") && $0.contains("does not know") })
        #expect(try repo.blame(.commit(bad, fixed: nil)).affected.map(\.node.name).sorted() == ["broken", "fixed"])
        expectMLVError({ if case .notFound = $0 { true } else { false } }, mentions: ["nosuchcommit"]) {
            try repo.blame(.commit("nosuchcommit", fixed: nil))
        }

        // --code PATH --rev REV: the content a file had at a revision.
        try probe.write("src/prep.py", .text("x = x / 255\n"))
        _ = try git("add", "src/prep.py")
        _ = try git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "prep")
        try probe.write("data", ["a.csv": "1\n"])
        var request = AddDatasetRequest(name: "clean", path: probe.path("data"))
        request.code = [probe.path("src/prep.py")]
        try repo.addDataset(request)
        try probe.write("src/prep.py", .text("x = x / 256\n"))
        let hit = try repo.blame(.code(path: "src/prep.py", rev: "HEAD"))
        #expect(hit.affected.map(\.node.display).contains("clean@v1"))
        expectMLVError({ if case .notFound = $0 { true } else { false } }, mentions: ["src/none.py"]) {
            try repo.blame(.code(path: "src/none.py", rev: "HEAD"))
        }
    }

    @Test func taintPropagatesBlocksPromotionAndIsAudited() throws {
        let p = try Pipeline()
        let repo = p.repo
        try repo.promote("digits@v1", to: "staging", message: "try")
        try repo.taint("raw@v1", reason: "labels shifted by one")
        let marks = try repo.taintMarks(of: p.model)
        #expect(marks.map(\.summary) == ["tainted via raw@v1: labels shifted by one"])
        #expect(marks[0].path.first == "raw@v1" && marks[0].path.last == "model:digits@v1")
        expectMLVError({ if case .refused = $0 { true } else { false } }, mentions: ["digits@v1", "tainted via raw@v1", "--force"]) {
            try repo.promote("digits@v1", to: "production", message: "ship")
        }
        expectMLVError({ if case .invalidArgument = $0 { true } else { false } }, mentions: ["reason"]) {
            try repo.promote("digits@v1", to: "production", message: " ", force: true)
        }
        let forced = try repo.promote("digits@v1", to: "production", message: "hotfix needed now", force: true)
        #expect(forced.event.forced)
        #expect(forced.event.reason == "tainted via raw@v1: labels shifted by one")
        #expect(try repo.verifyChain(model: "digits").isIntact)
        expectMLVError({ if case .refused = $0 { true } else { false } }, mentions: ["already tainted"]) {
            try repo.taint("raw@v1", reason: "again")
        }
        expectMLVError({ if case .invalidArgument = $0 { true } else { false } }, mentions: ["-m"]) {
            try repo.taint("clean@v1", reason: "")
        }
        try repo.untaint("raw@v1", reason: "relabelled upstream was wrong")
        expectMLVError({ if case .notFound = $0 { true } else { false } }, mentions: ["not tainted"]) {
            try repo.untaint("raw@v1", reason: "x")
        }
        #expect(try repo.taintMarks(of: p.model).isEmpty)
        try repo.promote("digits@v1", to: "archived", message: "done")
        let history = try repo.taintHistory()
        #expect(history.map(\.event.action) == [.untaint, .taint])
        #expect(repo.verifyTaintChain().isIntact && repo.verifyTaintChain().events == 2)
        _ = try repo.gc(graceSeconds: 0, dryRun: false)
        #expect(repo.fsck(full: true).isClean)
        #expect(try repo.taintHistory().count == 2, "gc keeps the taint chain")
    }

    /// The batch form (listings) finds exactly the marks asking for each version alone
    /// does, with the lineage index and without it, for every version in the store.
    @Test func batchTaintMarksEqualEachVersionsOwn() throws {
        let p = try Pipeline()
        let repo = p.repo
        try repo.taint("raw@v1", reason: "labels shifted by one")
        var ids: [ObjectID] = []
        for kind in [ArtifactKind.dataset, .model] {
            for name in try repo.refs.names(kind: kind.rawValue) {
                ids += try repo.refs.versions(kind: kind.rawValue, name: name).map(\.id)
            }
        }
        #expect(ids.count > 4)
        for withIndex in [true, false] {
            if !withIndex { for suffix in ["", "-journal"] { unlink(repo.lineageIndexPath + suffix) } }
            else { _ = try repo.reindex() }
            let batch = try repo.taintMarks(of: ids)
            var single: [ObjectID: [String]] = [:]
            for id in ids {
                let marks = try repo.taintMarks(of: id)
                if !marks.isEmpty { single[id] = marks.map { $0.summary + " " + $0.path.joined(separator: ">") } }
            }
            #expect(batch.mapValues { $0.map { $0.summary + " " + $0.path.joined(separator: ">") } } == single, "index: \(withIndex)")
            #expect(batch[p.model] != nil, "the model made from raw@v1 is marked")
            #expect(batch.count < ids.count, "versions not downstream of raw@v1 are not")
        }
    }

    @Test func anEditedTaintEventIsDetected() throws {
        let p = try Pipeline()
        try p.repo.taint("raw@v1", reason: "bad")
        try p.repo.taint("clean@v1", reason: "worse")
        let first = try p.repo.taintHistory().last!.id
        // Point the head's previous at something else by rewriting the head event.
        var head = try p.repo.taintHistory().first!.event
        head.previous = SHA256.hash(Array("elsewhere".utf8))
        let id = try Pipeline.store(p.repo, head.canonicalBytes())
        try FS.atomicWrite(p.repo.refs.root + "/taint/head", Array((id.hex + "\n").utf8))
        let report = p.repo.verifyTaintChain()
        #expect(!report.isIntact)
        #expect(report.problem?.contains("missing") == true, "\(report.problem ?? "")")
        _ = first
    }
}
