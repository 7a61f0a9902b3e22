import MLVBasics
import MLVKit
import MLVModel
import MLVStore

/// A large generated lineage history for benchmarks, written straight into a store (one
/// pack, ref files without fsync): one root dataset; `chains` datasets of `depth`
/// versions each, version k written by a prep run from version k-1 (version 1 from the
/// root); model versions trained by runs on the last version of a chain; and evaluation
/// runs reading a model version and a dataset version. Every run shares one code
/// snapshot and a commit. Everything is reachable downstream from `root@v1`.
public struct LineageHistory: Sendable {
    public var chains = 2000
    public var depth = 10
    public var modelNames = 500
    public var modelVersions = 10
    public var evalRuns = 75_000

    public init() {}

    /// Runs in total: one per dataset version, one per model version, and the eval runs.
    public var runs: Int { chains * depth + modelNames * modelVersions + evalRuns }

    /// Writes the history into the (fresh) repository at `directory`.
    /// - Throws: store errors.
    public func generate(in directory: String) throws {
        let repo = try Repository.initialize(at: directory)
        let writer = repo.objects.writer()
        var counter: UInt64 = 0
        func put(_ bytes: [UInt8], _ kind: ObjectKind = .manifest) throws -> ObjectID {
            let id = SHA256.hash(bytes)
            try writer.put(id, kind: kind, bytes: bytes, compression: .always)
            return id
        }
        func runID() -> String {
            counter += 1
            let hex = String(counter, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }
        var refFiles: [(String, ObjectID)] = []
        let refs = repo.refs.root
        func version(_ kind: String, _ name: String, _ n: Int, _ id: ObjectID) { refFiles.append(("\(refs)/\(kind)/\(name)/versions/\(n)", id)) }

        let blob = Array("x,y\n1,2\n".utf8)
        let blobID = try put(blob, .chunk)
        let tree = Tree(entries: [Tree.Entry(name: "data.csv", kind: .file, mode: 0o644, size: Int64(blob.count), id: blobID)])
        let root = try put(tree.canonicalBytes(), .tree)
        let code = try put(CodeManifest(root: root, paths: ["data.csv"]).json.canonicalBytes())
        let runCode = RunCode(commit: String(repeating: "c", count: 40), snapshot: code)
        let time = "2026-01-01T00:00:00Z"
        func dataset(_ name: String, inputs: [Input], run: String?) throws -> ObjectID {
            try put(DatasetManifest(name: name, root: root, files: 1, bytes: Int64(blob.count), inputs: inputs, splits: [:],
                                    message: "", meta: [:], author: "bench", created: time, source: "gen", run: run).canonicalBytes())
        }
        func run(_ id: String, _ name: String, inputs: [Input], outputs: [RunOutput]) throws -> ObjectID {
            try put(RunManifest(run: id, name: name, command: ["python3", name + ".py"], cwd: ".", started: time, ended: time,
                                status: .succeeded, exitCode: 0, params: ["lr": "0.1"], metrics: ["acc": 0.5], inputs: inputs,
                                outputs: outputs, code: runCode, author: "bench").canonicalBytes())
        }

        let rootID = try dataset("root", inputs: [], run: nil)
        version("dataset", "root", 1, rootID)
        var runRefs: [(String, ObjectID)] = []
        var lastOfChain: [ObjectID] = []
        for c in 0..<chains {
            var previous = rootID
            let name = "chain-\(c)"
            for k in 1...depth {
                let r = runID()
                let input = Input(role: k == 1 ? "raw" : "parent", id: previous)
                let d = try dataset(name, inputs: [input], run: r)
                runRefs.append((r, try run(r, "prep", inputs: [input], outputs: [RunOutput(kind: "dataset", name: name, path: "out", id: d, status: .stored)])))
                version("dataset", name, k, d)
                previous = d
            }
            lastOfChain.append(previous)
        }
        var models: [ObjectID] = []
        for m in 0..<modelNames {
            let name = "model-\(m)"
            for v in 1...modelVersions {
                let r = runID()
                let input = Input(role: "train", id: lastOfChain[(m * modelVersions + v) % lastOfChain.count])
                let id = try put(ModelManifest(name: name, root: root, files: 1, bytes: Int64(blob.count), inputs: [input], message: "",
                                               meta: [:], author: "bench", created: time, source: "gen", run: r).canonicalBytes())
                runRefs.append((r, try run(r, "train", inputs: [input], outputs: [RunOutput(kind: "model", name: name, path: "m", id: id, status: .stored)])))
                version("model", name, v, id)
                models.append(id)
            }
        }
        for e in 0..<evalRuns {
            let r = runID()
            let inputs = [Input(role: "model", id: models[e % models.count]), Input(role: "eval", id: lastOfChain[e % lastOfChain.count])]
            runRefs.append((r, try run(r, "eval", inputs: inputs, outputs: [])))
        }
        try writer.commit()
        for (r, id) in runRefs { refFiles.append(("\(refs)/runs/\(r)", id)) }
        var made = Set<String>()
        for (path, id) in refFiles {
            let dir = FS.parent(of: path)
            if made.insert(dir).inserted { try FS.makeDirectories(dir) }
            try FS.atomicWrite(path, Array((id.hex + "\n").utf8), durable: false)
        }
        // Every model's newest version holds production.
        for m in 0..<modelNames {
            try repo.promote("model-\(m)@v\(modelVersions)", to: "production", message: "bench", actor: "bench")
        }
        // A long-lived store has had its small event packs merged by gc.
        _ = try repo.gc(graceSeconds: 0, dryRun: false)
    }
}
