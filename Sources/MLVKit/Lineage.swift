import MLVBasics
import MLVModel
import MLVStore

/// What a lineage node is.
public enum LineageKind: String, Sendable, CaseIterable {
    case dataset, model, run, code
}

/// One thing in the lineage graph: a dataset or model version (or a version manifest
/// no ref points at, such as a failed run's output), a run, or a code snapshot.
public struct LineageNode: Sendable, Equatable {
    /// The manifest id in hex, or for a run its run id (16 hex digits).
    public var key: String
    public var kind: LineageKind
    /// Dataset or model name, run name, or for code the snapshot's paths joined.
    public var name: String
    /// The version number when a version ref points at the manifest.
    public var version: Int?
    /// The manifest id (for runs, the run manifest's id).
    public var id: ObjectID
    /// RFC 3339 UTC (a run's start).
    public var created: String
    /// The root tree (datasets, models, code).
    public var root: ObjectID?
    /// The git commit a run's code was at.
    public var commit: String?

    public init(key: String, kind: LineageKind, name: String, version: Int?, id: ObjectID, created: String,
                root: ObjectID? = nil, commit: String? = nil) {
        self.key = key; self.kind = kind; self.name = name; self.version = version; self.id = id
        self.created = created; self.root = root; self.commit = commit
    }

    /// `mnist@v3`, `model:digits@v2`, `run train (0123abcd)`, `code 1a2b3c4d (src/prep.py)`.
    public var display: String {
        Self.display(kind: kind, name: name, version: version, idShort: id.short, keyPrefix: String(key.prefix(8)))
    }

    /// `display` from the parts it shows.
    static func display(kind: LineageKind, name: String, version: Int?, idShort: String, keyPrefix: String) -> String {
        switch kind {
        case .dataset: return version.map { "\(name)@v\($0)" } ?? "\(name) (\(idShort), no version)"
        case .model: return version.map { "model:\(name)@v\($0)" } ?? "model:\(name) (\(idShort), no version)"
        case .run: return "run \(name) (\(keyPrefix))"
        case .code: return "code \(idShort) (\(name == "." ? "the work tree" : name))"
        }
    }
}

/// "child was made from parent": one lineage edge, as stored in the child's manifest (or
/// in the run that wrote the child).
public struct LineageEdge: Sendable, Hashable {
    public var child: String
    public var parent: String
    /// `train`, `eval`, `parent`, `code`, `output` (a run to what it wrote), ...
    public var role: String
    public var split: String?

    public init(child: String, parent: String, role: String, split: String? = nil) {
        self.child = child; self.parent = parent; self.role = role; self.split = split
    }
}

/// Which way a walk goes: toward what something was made from, or what was made from it.
public enum LineageDirection: String, Sendable {
    case up, down, both
}

/// A file found inside a stored tree: the node whose root holds it and its path there.
public struct BlobHit: Sendable, Hashable {
    public var key: String
    public var path: String
    public var blob: ObjectID
}

/// Where lineage facts are read from: the SQLite index, or the manifests themselves
/// (`MemoryLineage`). Every query gives the same answer from either. Walks go by
/// handles: small integers a source gives each key it knows (a node's, or an edge end's
/// whose object is missing).
protocol LineageSource: AnyObject {
    /// The nodes among `keys` that exist (missing objects are absent).
    func nodes(_ keys: [String]) throws -> [String: LineageNode]
    /// Each key's handle, nil for a key the source has never seen.
    func handles(_ keys: [String]) throws -> [Int32?]
    /// One more than the largest handle.
    func handleLimit() throws -> Int
    /// The labels (role, split) edges carry, by label number.
    func labels() throws -> [EdgeLabel]
    /// The edges whose child (`.up`) or parent (`.down`) is one of `handles`, by handle.
    func edges(of handles: [Int32], _ direction: LineageDirection) throws -> [IntEdge]
    /// Appends the row of each of `handles` to `rows` (a key-only row for a missing
    /// object) and returns their row numbers, in order. A source may instead replace
    /// `rows` by a table of every node it has (`replaced`): row numbers handed out
    /// before are then void, and asking again for them is cheap.
    func rows(_ handles: [Int32], into rows: inout LineageRows) throws -> (rows: [Int32], replaced: Bool)
    /// Every (node, path) whose tree holds a file whose blob id starts with `prefix`.
    func containers(ofBlob prefix: String) throws -> [BlobHit]
    /// The code snapshots that hold `path`, with the file's blob.
    func codeFiles(path: String) throws -> [BlobHit]
    /// Every run with a recorded git commit.
    func runCommits() throws -> [(key: String, commit: String)]
    /// Runs `body` on one consistent snapshot of the source (handles stay valid).
    func reading<T>(_ body: () throws -> T) throws -> T
}

/// Receives the lineage facts read from manifests: the index when syncing, or a
/// `MemoryLineage` when scanning.
protocol LineageSink: AnyObject {
    func hasNode(_ key: String) throws -> Bool
    func addNode(_ node: LineageNode, edges: [LineageEdge], params: [String: String], metrics: [String: Double]) throws
    /// Sets the version of a node added without one.
    func setVersion(_ key: String, version: Int) throws
    func hasTree(_ id: ObjectID) throws -> Bool
    func addTree(_ id: ObjectID, entries: [(name: String, child: ObjectID, isDirectory: Bool)]) throws
}

/// The lineage facts of a whole repository held in memory, read straight from the
/// manifests: what the index must agree with, and the fallback when it cannot be used.
final class MemoryLineage: LineageSource, LineageSink {
    var nodeMap: [String: LineageNode] = [:]
    /// Every edge once (a run and its output's manifest both record the `output` edge).
    var allEdges = Set<LineageEdge>()
    var treeEntries: [ObjectID: [(name: String, child: ObjectID, isDirectory: Bool)]] = [:]
    var treesByChild: [ObjectID: [(tree: ObjectID, name: String)]] = [:]
    /// Handles: every key met (nodes and edge ends), numbered in the order met.
    var handleOf: [String: Int32] = [:]
    var keyOf: [String] = []
    var labelList: [EdgeLabel] = []
    var labelOf: [EdgeLabel: Int32] = [:]
    /// By handle: the edges down from it (it is the parent) and up from it (the child).
    var down: [[IntEdge]] = []
    var up: [[IntEdge]] = []

    func hasNode(_ key: String) -> Bool { nodeMap[key] != nil }

    private func handle(_ key: String) -> Int32 {
        if let h = handleOf[key] { return h }
        let h = Int32(keyOf.count)
        handleOf[key] = h
        keyOf.append(key)
        down.append([])
        up.append([])
        return h
    }

    func addNode(_ node: LineageNode, edges: [LineageEdge], params: [String: String], metrics: [String: Double]) {
        nodeMap[node.key] = node
        _ = handle(node.key)
        for e in edges where allEdges.insert(e).inserted {
            let label = EdgeLabel(role: e.role, split: e.split)
            let l = labelOf[label] ?? {
                labelList.append(label)
                labelOf[label] = Int32(labelList.count - 1)
                return Int32(labelList.count - 1)
            }()
            let ends = IntEdge(parent: handle(e.parent), child: handle(e.child), label: l)
            down[Int(ends.parent)].append(ends)
            up[Int(ends.child)].append(ends)
        }
    }

    func handles(_ keys: [String]) -> [Int32?] { keys.map { handleOf[$0] } }

    func reading<T>(_ body: () throws -> T) throws -> T { try body() }

    func handleLimit() -> Int { keyOf.count }

    func labels() -> [EdgeLabel] { labelList }

    func edges(of handles: [Int32], _ direction: LineageDirection) -> [IntEdge] {
        handles.flatMap { h -> [IntEdge] in
            switch direction {
            case .up: return up[Int(h)]
            case .down: return down[Int(h)]
            case .both: return up[Int(h)] + down[Int(h)]
            }
        }
    }

    func rows(_ handles: [Int32], into rows: inout LineageRows) -> (rows: [Int32], replaced: Bool) {
        (handles.map { h in nodeMap[keyOf[Int(h)]].map { rows.append($0) } ?? rows.appendMissing(key: keyOf[Int(h)]) }, false)
    }

    func setVersion(_ key: String, version: Int) { nodeMap[key]?.version = version }

    func hasTree(_ id: ObjectID) -> Bool { treeEntries[id] != nil }

    func addTree(_ id: ObjectID, entries: [(name: String, child: ObjectID, isDirectory: Bool)]) {
        treeEntries[id] = entries
        for e in entries { treesByChild[e.child, default: []].append((id, e.name)) }
    }

    func nodes(_ keys: [String]) -> [String: LineageNode] {
        var out: [String: LineageNode] = [:]
        for k in keys { if let n = nodeMap[k] { out[k] = n } }
        return out
    }

    func containers(ofBlob prefix: String) -> [BlobHit] {
        let blobs = Set(treesByChild.keys.filter { $0.hex.hasPrefix(prefix) && !isTree($0) })
        let roots = Dictionary(grouping: nodeMap.values.filter { $0.root != nil }, by: { $0.root! })
        var hits: [BlobHit] = []
        for blob in blobs {
            var stack: [(ObjectID, String)] = (treesByChild[blob] ?? []).map { ($0.tree, $0.name) }
            while let (tree, path) = stack.popLast() {
                for n in roots[tree] ?? [] { hits.append(BlobHit(key: n.key, path: path, blob: blob)) }
                for up in treesByChild[tree] ?? [] { stack.append((up.tree, up.name + "/" + path)) }
            }
        }
        return hits
    }

    private func isTree(_ id: ObjectID) -> Bool { treeEntries[id] != nil }

    func codeFiles(path: String) -> [BlobHit] {
        nodeMap.values.filter { $0.kind == .code }.compactMap { n -> BlobHit? in
            var tree = n.root!
            let parts = path.split(separator: "/").map(String.init)
            for (i, part) in parts.enumerated() {
                guard let e = treeEntries[tree]?.first(where: { $0.name == part }) else { return nil }
                if i == parts.count - 1 { return e.isDirectory ? nil : BlobHit(key: n.key, path: path, blob: e.child) }
                guard e.isDirectory else { return nil }
                tree = e.child
            }
            return nil
        }
    }

    func runCommits() -> [(key: String, commit: String)] {
        nodeMap.values.compactMap { n in n.commit.map { (n.key, $0) } }.sorted { $0.key < $1.key }
    }
}

extension Repository {
    /// The lineage facts straight from refs and manifests, without the index.
    func scanLineage() throws -> MemoryLineage {
        let memory = MemoryLineage()
        try syncAllLineage(into: memory)
        return memory
    }

    /// Reads every version ref and run ref into `sink`, adding what it lacks.
    func syncAllLineage(into sink: LineageSink) throws {
        for kind in ArtifactKind.allCases {
            for name in try wrap({ try refs.names(kind: kind.rawValue) }) {
                try syncVersions(kind: kind, name: name, into: sink)
            }
        }
        try syncRuns(into: sink)
    }

    /// Adds the versions of `name` that `sink` lacks.
    func syncVersions(kind: ArtifactKind, name: String, into sink: LineageSink) throws {
        for v in try wrap({ try refs.versions(kind: kind.rawValue, name: name) }) {
            if try sink.hasNode(v.id.hex) {
                try sink.setVersion(v.id.hex, version: v.number)
            } else {
                try addManifestNode(v.id, version: v.number, into: sink)
            }
        }
    }

    /// Adds the recorded runs that `sink` lacks.
    func syncRuns(into sink: LineageSink, only: Set<String>? = nil) throws {
        for run in try only.map({ $0.sorted() }) ?? wrap({ try refs.runIDs() }) {
            guard try !sink.hasNode(run), let id = try wrap({ try refs.run(run) }) else { continue }
            // A run whose manifest cannot be read stays out of the graph; the walk reports it as missing.
            guard let m = try? runManifest(id) else { continue }
            var edges = m.inputs.map { LineageEdge(child: run, parent: $0.id.hex, role: $0.role, split: $0.split) }
            if let snapshot = m.code?.snapshot { edges.append(LineageEdge(child: run, parent: snapshot.hex, role: "code")) }
            for o in m.outputs { if let oid = o.id { edges.append(LineageEdge(child: oid.hex, parent: run, role: "output")) } }
            try sink.addNode(LineageNode(key: run, kind: .run, name: m.name, version: nil, id: id, created: m.started,
                                         commit: m.code?.commit),
                             edges: edges, params: m.params, metrics: m.metrics)
            for e in edges {
                let other = e.child == run ? e.parent : e.child
                if try !sink.hasNode(other), let oid = ObjectID(hex: other) { try addManifestNode(oid, version: nil, into: sink) }
            }
        }
    }

    /// Adds one dataset, model or code manifest (and the code snapshots it names) to
    /// `sink`. An unreadable manifest is left out: walks report it as missing.
    func addManifestNode(_ id: ObjectID, version: Int?, into sink: LineageSink) throws {
        guard let json = try? manifestJSON(id) else { return }
        let key = id.hex
        var node: LineageNode
        var edges: [LineageEdge] = []
        switch schemaOf(json) {
        case DatasetManifest.schema:
            guard let m = try? DatasetManifest(json: json) else { return }
            node = LineageNode(key: key, kind: .dataset, name: m.name, version: version, id: id, created: m.created, root: m.root)
            edges = m.inputs.map { LineageEdge(child: key, parent: $0.id.hex, role: $0.role, split: $0.split) }
            if let run = m.run { edges.append(LineageEdge(child: key, parent: run, role: "output")) }
        case ModelManifest.schema:
            guard let m = try? ModelManifest(json: json) else { return }
            node = LineageNode(key: key, kind: .model, name: m.name, version: version, id: id, created: m.created, root: m.root)
            edges = m.inputs.map { LineageEdge(child: key, parent: $0.id.hex, role: $0.role, split: $0.split) }
            if let run = m.run { edges.append(LineageEdge(child: key, parent: run, role: "output")) }
        case CodeManifest.schema:
            guard let m = try? CodeManifest(json: json) else { return }
            node = LineageNode(key: key, kind: .code, name: m.paths.joined(separator: ", "), version: nil, id: id,
                               created: "", root: m.root)
        default:
            return
        }
        try sink.addNode(node, edges: edges, params: [:], metrics: [:])
        if let root = node.root { try addTree(root, into: sink) }
        for e in edges where e.role == "code" {
            if try !sink.hasNode(e.parent), let pid = ObjectID(hex: e.parent) { try addManifestNode(pid, version: nil, into: sink) }
        }
    }

    /// Records which blobs and subtrees a tree holds, once per tree id.
    private func addTree(_ id: ObjectID, into sink: LineageSink) throws {
        guard try !sink.hasTree(id), let t = try? tree(id) else { return }
        var entries: [(name: String, child: ObjectID, isDirectory: Bool)] = []
        for e in t.entries {
            guard let child = e.id else { continue }
            entries.append((e.name, child, e.kind == .dir))
            if e.kind == .dir { try addTree(child, into: sink) }
        }
        try sink.addTree(id, entries: entries)
    }
}
