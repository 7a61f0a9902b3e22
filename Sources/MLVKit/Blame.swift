import MLVBasics
import MLVModel
import MLVStore

/// Orders stage names with `production` first, then by name.
func productionFirst(_ a: String, _ b: String) -> Bool {
    (a == "production" ? 0 : 1, a) < (b == "production" ? 0 : 1, b)
}

/// What `mlv blame` starts from.
public enum BlameTarget: Sendable, Equatable, CustomStringConvertible {
    /// A version ref (`mnist-raw@v3`), an id prefix of a manifest or run, or a blob id.
    case ref(String)
    /// The content a file had at a git revision (`--code PATH --rev REV`).
    case code(path: String, rev: String)
    /// Runs whose recorded commit descends from `bad` and not from `fixed`.
    case commit(String, fixed: String?)
    /// Code snapshots (and so runs) whose `file` had a line containing `text`.
    case contains(file: String, text: String)

    public var description: String {
        switch self {
        case .ref(let r): return r
        case .code(let path, let rev): return "\(path) at \(rev)"
        case .commit(let bad, let fixed): return "commit \(bad)" + (fixed.map { " (fixed in \($0))" } ?? "")
        case .contains(let file, let text): return "\(file) containing '\(text)'"
        }
    }

    var json: JSON {
        switch self {
        case .ref(let r): return .object(["ref": .string(r)])
        case .code(let path, let rev): return .object(["code": .string(path), "rev": .string(rev)])
        case .commit(let bad, let fixed): return .object(["commit": .string(bad), "fixed": fixed.map { .string($0) } ?? .null])
        case .contains(let file, let text): return .object(["file": .string(file), "contains": .string(text)])
        }
    }
}

/// One thing blame found: the node, the stages and aliases it holds now (models), and
/// the path that connects it to the blamed thing.
public struct BlameItem: Sendable {
    /// What kind of thing it is.
    public let kind: LineageKind
    /// Stages held now, production first.
    public var stages: [String]
    public var aliases: [String]
    /// Displays before the walk's start on this item's path (`blob 1a2b3c (src/prep.py)`).
    var lead: [String]
    /// The node's position in the result's graph.
    var position: Int
    /// The walk's rows (shared by every item) and this node's row there.
    let rows: SharedRows
    let row: Int32

    /// The node, decoded from the walk's rows when asked.
    public var node: LineageNode { rows.rows.node(Int(row))! }
    /// How the node is shown (`node.display`), without decoding the rest of it.
    public var display: String { rows.rows.display(Int(row)) }
    var name: String { rows.rows.names[Int(rows.rows.name[Int(row)])] }
    var version: Int? { rows.rows.versionOf(Int(row)) }
    /// The id `--json` gives: a run's id, or the manifest id of anything else.
    var jsonID: String { kind == .run ? rows.rows.key(Int(row)) : rows.rows.string(rows.rows.idSpan(Int(row))) ?? "" }
}

/// Rows shared by reference, so items holding them copy one pointer.
final class SharedRows: Sendable {
    let rows: LineageRows
    init(_ rows: LineageRows) { self.rows = rows }
}

/// What `mlv blame` found.
public struct BlameResult: Sendable {
    public var target: BlameTarget
    /// What the target turned out to name, for people (empty when it matched nothing).
    public var matched: [String]
    /// Code, then datasets, runs and models (models holding production first).
    public var affected: [BlameItem]
    public var graph: LineageGraph
    /// Missing objects, cycles, runs whose commit git does not know.
    public var problems: [String]

    /// Displays from the blamed thing to `item` along a shortest path.
    public func path(_ item: BlameItem) -> [String] {
        item.lead + graph.pathPositions(to: item.position).map(graph.display(at:))
    }

    /// Whether an affected model holds `stage` now.
    public func holds(_ stage: String) -> Bool {
        affected.contains { $0.kind == .model && $0.stages.contains(stage) }
    }

    /// `json`'s canonical bytes, written straight from the walk's rows: each node's
    /// display escaped once, each path read off the positions it runs through.
    public var jsonBytes: [UInt8] {
        func ascii(_ s: StaticString, _ out: inout [UInt8]) {
            out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
        }
        func strings(_ list: [String], _ out: inout [UInt8]) {
            out.append(UInt8(ascii: "["))
            for (i, s) in list.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSON.appendEscapedString(s, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        // Each position's display, escaped, once.
        var displays: [UInt8] = []
        var displayStart = [Int](repeating: 0, count: graph.count + 1)
        for p in 0..<graph.count {
            JSON.appendEscapedString(graph.display(at: p), to: &displays)
            displayStart[p + 1] = displays.count
        }
        var out: [UInt8] = []
        out.reserveCapacity(displays.count * 8 + 1024)
        var chain: [Int] = []
        ascii("{\"affected\":[", &out)
        for (i, a) in affected.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            ascii("{\"aliases\":", &out)
            strings(a.aliases, &out)
            ascii(",\"id\":", &out)
            JSON.appendEscapedString(a.jsonID, to: &out)
            ascii(",\"kind\":", &out)
            JSON.appendEscapedString(a.kind.rawValue, to: &out)
            ascii(",\"name\":", &out)
            JSON.appendEscapedString(a.name, to: &out)
            ascii(",\"path\":[", &out)
            for (j, l) in a.lead.enumerated() {
                if j > 0 { out.append(UInt8(ascii: ",")) }
                JSON.appendEscapedString(l, to: &out)
            }
            // The same path `json` gives: back along `fromAt` while it points earlier.
            chain.removeAll(keepingCapacity: true)
            var p = a.position
            chain.append(p)
            while graph.fromAt[p] >= 0 && Int(graph.fromAt[p]) < p {
                p = Int(graph.fromAt[p])
                chain.append(p)
            }
            for (j, q) in chain.reversed().enumerated() {
                if j > 0 || !a.lead.isEmpty { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: displays[displayStart[q]..<displayStart[q + 1]])
            }
            ascii("],\"stages\":", &out)
            strings(a.stages, &out)
            ascii(",\"version\":", &out)
            if let v = a.version { JSON.appendInt(Int64(v), to: &out) } else { ascii("null", &out) }
            out.append(UInt8(ascii: "}"))
        }
        ascii("],\"matched\":", &out)
        strings(matched, &out)
        ascii(",\"problems\":", &out)
        strings(problems, &out)
        ascii(",\"target\":", &out)
        target.json.encodeCanonical(into: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The target as JSON, with the rest of the result.
    public var json: JSON {
        // Every path at once: each node's display made once, each path from its parent's.
        var paths: [[JSON]] = []
        paths.reserveCapacity(graph.count)
        for p in 0..<graph.count {
            let d = JSON.string(graph.display(at: p))
            let from = Int(graph.fromAt[p])
            paths.append(from >= 0 && from < p ? paths[from] + [d] : [d])
        }
        return .object([
            "target": target.json,
            "matched": .array(matched.map { .string($0) }),
            "affected": .array(affected.map { a in .object([
                "kind": .string(a.kind.rawValue), "name": .string(a.name),
                "version": a.version.map { .int(Int64($0)) } ?? .null,
                "id": .string(a.jsonID),
                "stages": .array(a.stages.map { .string($0) }), "aliases": .array(a.aliases.map { .string($0) }),
                "path": .array(a.lead.map { .string($0) } + paths[a.position]),
            ]) }),
            "problems": .array(problems.map { .string($0) }),
        ])
    }
}

extension Repository {
    /// Everything downstream of `target`, with the stages models hold now.
    /// - Throws: `.unknownRef` for a name that is not a version; `.ambiguousPrefix` for an
    ///   id prefix matching several things; `.invalidArgument` for `--commit` outside a git
    ///   repository; `.notFound` for a commit, revision or path git does not know.
    public func blame(_ target: BlameTarget) throws -> BlameResult {
        try blame(target, source: lineage())
    }

    /// Blame answered from `source` (the index, or the manifests read directly).
    func blame(_ target: BlameTarget, source: LineageSource) throws -> BlameResult {
        var starts: [String] = []
        var lead: [String: [String]] = [:]  // displays before a start's own, on every path through it
        var matched: [String] = []
        var problems: [String] = []
        var split: String?
        var includeStarts = true

        func blobStarts(_ hits: [BlobHit]) {
            for h in hits.sorted(by: { ($0.key, $0.path) < ($1.key, $1.path) }) where lead[h.key] == nil {
                starts.append(h.key)
                lead[h.key] = ["blob \(h.blob.short) (\(h.path))"]
            }
        }

        switch target {
        case .ref(let text):
            do {
                let r = try resolve(text)
                starts = [r.id.hex]
                split = r.split
                includeStarts = false
                matched = [r.kindDisplay]
            } catch MLVError.unknownRef(let what, let suggestions) {
                guard RefSpec.isIDPrefix(text) else { throw MLVError.unknownRef(what, suggestions: suggestions) }
                let runs = try wrap { try refs.runIDs() }.filter { $0.hasPrefix(text) }
                let hits = try source.containers(ofBlob: text)
                let blobs = Set(hits.map(\.blob))
                if runs.count + blobs.count > 1 {
                    throw MLVError.ambiguousPrefix(text, candidates: runs.map { "run \($0)" } + blobs.map { "blob \($0.hex)" }.sorted())
                }
                if text.utf8.count == 64, let node = try source.nodes([text])[text] {
                    starts = [text]  // a code snapshot (or an unversioned manifest) by its full id
                    includeStarts = false
                    matched = [node.display]
                } else if let run = runs.first {
                    starts = [run]
                    includeStarts = false
                    matched = ["run \(run)"]
                } else if let blob = blobs.first {
                    blobStarts(hits)
                    matched = ["blob \(blob.hex) in \(Set(hits.map(\.key)).count) version(s) or code snapshot(s)"]
                }
            }
        case .code(let path, let rev):
            let blob = try gitBlobID(path: path, rev: rev)
            let hits = try source.containers(ofBlob: blob.hex)
            blobStarts(hits)
            matched = ["\(path) at \(rev) is blob \(blob.hex)"]
        case .commit(let bad, let fixed):
            let badCommit = try gitCommit(bad, option: "--commit")
            let fixedCommit = try fixed.map { try gitCommit($0, option: "--fixed") }
            var verdict: [String: Bool] = [:]
            for (key, commit) in try source.runCommits() {
                if verdict[commit] == nil {
                    let known = try git(["cat-file", "-e", commit + "^{commit}"]).status == 0
                    if !known {
                        problems.append("run \(key.prefix(8)) was at commit \(commit), which git does not know here; not checked")
                        verdict[commit] = false
                        continue
                    }
                    let descends = try git(["merge-base", "--is-ancestor", badCommit, commit]).status == 0
                    let fixedToo = try fixedCommit.map { try git(["merge-base", "--is-ancestor", $0, commit]).status == 0 } ?? false
                    verdict[commit] = descends && !fixedToo
                }
                if verdict[commit] == true {
                    starts.append(key)
                    lead[key] = ["commit \(commit.prefix(12))"]
                }
            }
            matched = ["\(starts.count) run(s) at commits descending from \(badCommit.prefix(12))" +
                       (fixedCommit.map { " and not from \($0.prefix(12))" } ?? "")]
        case .contains(let file, let text):
            let hits = try source.codeFiles(path: file)
            var verdict: [ObjectID: Bool] = [:]
            for h in hits {
                if verdict[h.blob] == nil {
                    var bytes: [UInt8] = []
                    try readBlob(h.blob) { bytes += $0 }
                    verdict[h.blob] = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
                        .contains { $0.contains(text) }
                }
                if verdict[h.blob] == true, lead[h.key] == nil {
                    starts.append(h.key)
                    lead[h.key] = ["\(file) with '\(text)' (blob \(h.blob.short))"]
                }
            }
            matched = ["\(Set(starts).count) code snapshot(s) whose \(file) has a line containing '\(text)'"]
        }

        let graph = try walkLineage(source, from: starts, .down, split: split)
        problems += graph.problems
        var states: [String: RegistryState] = [:]
        let startSet = Set(starts)
        let rows = graph.rows
        let shared = SharedRows(rows)
        var items: [BlameItem] = []
        items.reserveCapacity(graph.count)
        // Which start each node's path begins at (only blob, commit and text targets lead in).
        var leadOf: [Int] = []
        if !lead.isEmpty {
            for p in 0..<graph.count {
                let from = Int(graph.fromAt[p])
                leadOf.append(graph.depthAt[p] == 0 || from < 0 || from >= p ? p : leadOf[from])
            }
        }
        for p in 0..<graph.count {
            let row = graph.rowAt[p]
            guard let kind = rows.kindOf(Int(row)),
                  includeStarts || graph.depthAt[p] != 0 || !startSet.contains(graph.key(at: p)) else { continue }
            var stages: [String] = [], aliases: [String] = []
            if kind == .model, let node = rows.node(Int(row)), let v = node.version {
                if states[node.name] == nil { states[node.name] = (try? registryHead(model: node.name))??.event.state ?? RegistryState() }
                let state = states[node.name]!
                stages = state.stages(of: v).filter { state.stages[$0]!.contains { $0.id == node.id } }
                    .sorted(by: productionFirst)
                aliases = state.aliases.filter { $0.value.version == v && $0.value.id == node.id }.keys.sorted()
            }
            let itemLead = lead.isEmpty ? [] : lead[graph.key(at: leadOf[p])] ?? []
            items.append(BlameItem(kind: kind, stages: stages, aliases: aliases, lead: itemLead, position: p, rows: shared, row: row))
        }
        // Sorted by (kind and stage rank, name, version, created, key), read from the rows:
        // names ranked once (a history has far fewer names than nodes), creation times and
        // keys compared as bytes.
        let kindOrder: [LineageKind: Int] = [.code: 0, .dataset: 1, .run: 2, .model: 3]
        var nameRank = [Int32](repeating: 0, count: rows.names.count)
        for (rank, i) in rows.names.indices.sorted(by: { rows.names[$0] < rows.names[$1] }).enumerated() { nameRank[i] = Int32(rank) }
        let nameOf = rows.name, versionOf = rows.version
        let major = items.map { a -> (Int, Int32, Int) in
            let rank = a.kind != .model ? 0 : a.stages.contains("production") ? 0 : a.stages.isEmpty ? 2 : 1
            let r = Int(a.row)
            return (kindOrder[a.kind]! * 4 + rank, nameRank[Int(nameOf[r])], versionOf[r] == .min ? 0 : Int(versionOf[r]))
        }
        let itemRows = items.map(\.row)
        let order: [Int] = rows.withOrder { o in
            items.indices.sorted { x, y in
                let (a, b) = (major[x], major[y])
                if a != b { return a < b }
                return o.createdThenKeyLess(Int(itemRows[x]), Int(itemRows[y]))
            }
        }
        return BlameResult(target: target, matched: starts.isEmpty ? [] : matched, affected: order.map { items[$0] }, graph: graph,
                           problems: problems)
    }

    /// The lineage around a version: up, down or both, at most `depth` hops.
    /// - Throws: `.unknownRef`, `.ambiguousPrefix` for the ref.
    public func lineage(of ref: String, _ direction: LineageDirection, depth: Int? = nil) throws -> LineageGraph {
        let (start, split) = try lineageStart(ref)
        let source = direction == .up ? try lineage(upstreamOf: [start]) : try lineage()
        return try walkLineage(source, from: [start], direction, maxDepth: depth, split: split)
    }

    /// The lineage around a version, answered from `source`.
    func lineage(of ref: String, _ direction: LineageDirection, depth: Int?, source: LineageSource) throws -> LineageGraph {
        let (start, split) = try lineageStart(ref)
        return try walkLineage(source, from: [start], direction, maxDepth: depth, split: split)
    }

    /// The node a ref names (a version, or a run by id or prefix) and its split.
    private func lineageStart(_ ref: String) throws -> (String, String?) {
        let start: String
        let split: String?
        do {
            let r = try resolve(ref)
            start = r.id.hex
            split = r.split
        } catch MLVError.unknownRef(let what, let suggestions) {
            let runs = RefSpec.isIDPrefix(ref) || RunManifest.isRunID(ref) ? try wrap { try refs.runIDs() }.filter { $0.hasPrefix(ref) } : []
            if runs.count > 1 { throw MLVError.ambiguousPrefix(ref, candidates: runs) }
            guard let run = runs.first else { throw MLVError.unknownRef(what, suggestions: suggestions) }
            start = run
            split = nil
        }
        return (start, split)
    }

    /// The stages and aliases each model version in `graph` holds now, by key.
    public func holdings(in graph: LineageGraph) -> [String: (stages: [String], aliases: [String])] {
        var states: [String: RegistryState] = [:]
        var out: [String: (stages: [String], aliases: [String])] = [:]
        for p in 0..<graph.count where graph.kind(at: p) == .model {
            guard let node = graph.node(at: p), let v = node.version else { continue }
            if states[node.name] == nil { states[node.name] = (try? registryHead(model: node.name))??.event.state ?? RegistryState() }
            let state = states[node.name]!
            let stages = state.stages(of: v).sorted(by: productionFirst)
            let aliases = state.aliases.filter { $0.value.version == v }.keys.sorted()
            if !stages.isEmpty || !aliases.isEmpty { out[node.key] = (stages, aliases) }
        }
        return out
    }

    /// The blob id (SHA-256) of the content `path` had at git revision `rev`.
    func gitBlobID(path: String, rev: String) throws -> ObjectID {
        try requireGit("--code")
        // `REV:./PATH` is relative to the directory git runs in (the repository root), which
        // may sit below git's top level.
        let object = try git(["rev-parse", "--verify", "--quiet", "\(rev):./\(path)"])
        guard object.status == 0, !object.text.isEmpty else {
            throw MLVError.notFound("git has no '\(path)' at revision '\(rev)' (paths are relative to \(root))")
        }
        let content = try git(["cat-file", "blob", object.text])
        guard content.status == 0 else { throw MLVError.notFound("git cannot read '\(path)' at '\(rev)' (\(object.text))") }
        return SHA256.hash(content.stdout)
    }

    /// The full id of a commit git knows.
    func gitCommit(_ rev: String, option: String) throws -> String {
        try requireGit(option)
        let out = try git(["rev-parse", "--verify", "--quiet", rev + "^{commit}"])
        guard out.status == 0, !out.text.isEmpty else { throw MLVError.notFound("git does not know commit '\(rev)' (\(option))") }
        return out.text
    }

    private func requireGit(_ option: String) throws {
        guard try git(["rev-parse", "--git-dir"]).status == 0 else {
            throw MLVError.invalidArgument("\(option) needs a git repository, and '\(root)' is not inside one")
        }
    }
}
