import MLVBasics
import MLVModel
import MLVStore

/// An edge by its ends' integers (handles at a source, positions in a graph) and its
/// label (role and split) number.
struct IntEdge: Sendable {
    var parent: Int32
    var child: Int32
    var label: Int32
}

/// An edge's role and split, numbered by the source it came from.
struct EdgeLabel: Sendable, Hashable {
    var role: String
    var split: String?
}

/// Key to position, built on first use (a walk itself never looks positions up by key).
/// A graph gets a new one whenever it gains nodes after being looked into, so copies
/// that grow apart never share one.
private final class PositionLookup: @unchecked Sendable {
    private let table = Locked<(map: [String: Int], count: Int)?>(nil)

    func position(_ key: String, in g: LineageGraph) -> Int? {
        table.withLock { t -> Int? in
            if t == nil || t!.count != g.count {
                var map: [String: Int] = [:]
                map.reserveCapacity(g.count)
                for p in 0..<g.count where map[g.key(at: p)] == nil { map[g.key(at: p)] = p }
                t = (map, g.count)
            }
            return t!.map[key]
        }
    }
}

/// The part of the lineage graph a walk reached: nodes, the edges it followed, how each
/// node was first reached (so every node has one path back to where the walk began),
/// and what went wrong on the way (missing objects, cycles). Nodes are held by their
/// position in `order`, their rows column by column (`LineageRows`), and edges by
/// positions, so a walk over a whole history makes no string per node or edge; keys,
/// nodes and displays are made when asked for.
public struct LineageGraph: Sendable {
    /// Where the walk began.
    public var starts: [String]
    /// Keys referenced along the way whose object is missing or unreadable.
    public var missing: [String] = []
    /// Cycles found (hand-edited manifests), each as keys around the loop.
    public var cycles: [[String]] = []
    var rows = LineageRows()
    /// By position: the node's row, depth, the edge it was first reached by (label -1
    /// for starts) and the position at that edge's other end (-1 for starts).
    var rowAt: [Int32] = []
    var depthAt: [Int32] = []
    var viaAt: [IntEdge] = []
    var fromAt: [Int32] = []
    /// The edges followed, in the order followed.
    var followed: [IntEdge] = []
    var labels: [EdgeLabel] = []
    private var lookup = PositionLookup()

    /// An empty walk from `starts`; walks fill in the rest.
    public init(starts: [String]) { self.starts = starts }

    var count: Int { rowAt.count }

    /// Keys in the order reached (starts first), including missing ones.
    public var order: [String] { (0..<count).map(key(at:)) }

    /// The edges followed, in the order followed. Setting them takes edges between nodes
    /// already in the graph (others are left out).
    public var edges: [LineageEdge] {
        get { followed.map(edge) }
        set {
            followed = newValue.compactMap { e in
                guard let p = position(e.parent), let c = position(e.child) else { return nil }
                return IntEdge(parent: Int32(p), child: Int32(c), label: label(e.role, e.split))
            }
        }
    }

    func key(at p: Int) -> String { rows.key(Int(rowAt[p])) }

    func kind(at p: Int) -> LineageKind? { rows.kindOf(Int(rowAt[p])) }

    /// The node at position `p` (nil when missing).
    func node(at p: Int) -> LineageNode? { rows.node(Int(rowAt[p])) }

    func position(_ key: String) -> Int? { lookup.position(key, in: self) }

    func edge(_ e: IntEdge) -> LineageEdge {
        let l = labels[Int(e.label)]
        return LineageEdge(child: key(at: Int(e.child)), parent: key(at: Int(e.parent)), role: l.role, split: l.split)
    }

    mutating func label(_ role: String, _ split: String?) -> Int32 {
        let l = EdgeLabel(role: role, split: split)
        if let i = labels.firstIndex(of: l) { return Int32(i) }
        labels.append(l)
        return Int32(labels.count - 1)
    }

    /// Adds `key` as reached; a key already present is left as it was. `via` counts only
    /// when its other end is in the graph already.
    public mutating func append(_ key: String, node: LineageNode?, depth: Int, via: LineageEdge?) {
        guard position(key) == nil else { return }
        var edge = IntEdge(parent: -1, child: -1, label: -1)
        var from: Int32 = -1
        let p = Int32(count)
        if let via, let other = position(via.child == key ? via.parent : via.child) {
            from = Int32(other)
            edge = via.child == key ? IntEdge(parent: from, child: p, label: label(via.role, via.split))
                : IntEdge(parent: p, child: from, label: label(via.role, via.split))
        }
        let row = node.map { rows.append($0) } ?? rows.appendMissing(key: key)
        appendPosition(row: row, depth: Int32(depth), via: edge, from: from)
        resetLookup()
    }

    /// Drops the key lookup (after nodes were added to a graph that may have been copied).
    mutating func resetLookup() { lookup = PositionLookup() }

    mutating func appendPosition(row: Int32, depth: Int32, via: IntEdge, from: Int32) {
        rowAt.append(row)
        depthAt.append(depth)
        viaAt.append(via)
        fromAt.append(from)
    }

    /// Every node reached that exists, by key.
    public var nodes: [String: LineageNode] {
        var out: [String: LineageNode] = [:]
        out.reserveCapacity(count)
        for p in 0..<count { if let n = node(at: p) { out[n.key] = n } }
        return out
    }

    /// Every node reached that exists, in the order reached.
    public var reachedNodes: [LineageNode] { (0..<count).compactMap(node(at:)) }

    /// The node `key` names, when it was reached and exists.
    public func node(_ key: String) -> LineageNode? { position(key).flatMap(node(at:)) }

    /// Hops from the nearest start to `key` (nil when not reached).
    public func depth(of key: String) -> Int? { position(key).map { Int(depthAt[$0]) } }

    /// How `key` was first reached (nil for a start or a key not reached).
    public func via(of key: String) -> LineageEdge? {
        position(key).flatMap { viaAt[$0].label < 0 ? nil : edge(viaAt[$0]) }
    }

    /// The keys from a start to `key`, following how each was first reached.
    public func pathKeys(to key: String) -> [String] {
        guard let p = position(key) else { return [key] }
        return pathPositions(to: p).map(key(at:))
    }

    /// Positions from a start to position `p`.
    func pathPositions(to p: Int) -> [Int] {
        var out = [p]
        var current = p
        while fromAt[current] >= 0, out.count <= count {
            current = Int(fromAt[current])
            out.append(current)
        }
        return out.reversed()
    }

    /// The edges in a fixed order (by parent, child, role, split), for output.
    public var sortedEdges: [LineageEdge] {
        edges.sorted { ($0.parent, $0.child, $0.role, $0.split ?? "") < ($1.parent, $1.child, $1.role, $1.split ?? "") }
    }

    /// How a key is shown: the node's display, or `missing <id>` when it is not there.
    public func display(_ key: String) -> String {
        position(key).map(display(at:)) ?? "missing object \(key.prefix(12))"
    }

    /// How the node at position `p` is shown.
    func display(at p: Int) -> String { rows.display(Int(rowAt[p])) }

    /// What went wrong during the walk, for people.
    public var problems: [String] {
        missing.map { key in
            let by = via(of: key).map { e in " (\(e.role) of \(display(e.child == key ? e.parent : e.child)))" } ?? ""
            return "missing object \(key)\(by): the walk went on around it"
        } + cycles.map { loop in
            "cycle in the lineage: " + (loop + [loop[0]]).map(display).joined(separator: " -> ") + " (a hand-edited manifest?)"
        }
    }
}

extension Repository {
    /// Walks the lineage from `starts`, breadth first, up (what they were made from),
    /// down (what was made from them) or both, at most `maxDepth` hops. `split` limits
    /// the first hop down to edges that used that split (or the whole version). Missing
    /// objects are recorded and walked around; cycles are recorded and never followed twice.
    ///
    /// The walk runs over the source's integer handles: positions by handle in an array,
    /// edges as handle pairs, and a level's new nodes ordered by key bytes.
    func walkLineage(_ source: LineageSource, from starts: [String], _ direction: LineageDirection, maxDepth: Int? = nil,
                     split: String? = nil) throws -> LineageGraph {
        try source.reading { try walk(source, from: starts, direction, maxDepth: maxDepth, split: split) }
    }

    private func walk(_ source: LineageSource, from starts: [String], _ direction: LineageDirection, maxDepth: Int?,
                      split: String?) throws -> LineageGraph {
        if direction == .both {
            var up = try walk(source, from: starts, .up, maxDepth: maxDepth, split: nil)
            let down = try walk(source, from: starts, .down, maxDepth: maxDepth, split: split)
            // Down's positions in `up`: the same key's position, or a new one appended.
            var at: [String: Int] = [:]
            for p in 0..<up.count { at[up.key(at: p)] = at[up.key(at: p)] ?? p }
            var map = [Int32](repeating: -1, count: down.count)
            var labelMap = down.labels.map { up.label($0.role, $0.split) }
            func mapped(_ e: IntEdge) -> IntEdge {
                IntEdge(parent: map[Int(e.parent)], child: map[Int(e.child)], label: labelMap[Int(e.label)])
            }
            for p in 0..<down.count {
                let key = down.key(at: p)
                if let q = at[key] { map[p] = Int32(q); continue }
                map[p] = Int32(up.count)
                at[key] = up.count
                let row = up.rows.append(row: Int(down.rowAt[p]), of: down.rows)
                let via = down.viaAt[p]
                up.appendPosition(row: row, depth: down.depthAt[p], via: via.label < 0 ? via : mapped(via),
                                  from: down.fromAt[p] < 0 ? -1 : map[Int(down.fromAt[p])])
            }
            up.followed += down.followed.map(mapped)
            up.resetLookup()
            labelMap = []
            up.missing = Array(Set(up.missing + down.missing)).sorted()
            up.cycles += down.cycles
            return up
        }
        var g = LineageGraph(starts: starts)
        g.labels = try source.labels()
        let limit = try source.handleLimit()
        // Position by handle (-1: not reached). Starts the source has never seen get no handle.
        var positionOf = [Int32](repeating: -1, count: limit)
        var handleAt: [Int32] = []
        var startKeys: [String] = []  // by start position
        var seenUnknown = Set<String>()
        for (s, h) in zip(starts, try source.handles(starts)) {
            if let h {
                guard positionOf[Int(h)] < 0 else { continue }
                positionOf[Int(h)] = Int32(handleAt.count)
            } else {
                guard seenUnknown.insert(s).inserted else { continue }
            }
            handleAt.append(h ?? -1)
            startKeys.append(s)
        }
        // Starts' rows, in order (a start the source never saw is missing).
        func startRows() throws {
            let known = try source.rows(handleAt.filter { $0 >= 0 }, into: &g.rows).rows
            var k = 0
            for p in startKeys.indices {
                let row: Int32
                if handleAt[p] >= 0 {
                    row = known[k]
                    k += 1
                } else {
                    row = g.rows.appendMissing(key: startKeys[p])
                }
                if p < g.count { g.rowAt[p] = row } else {
                    g.appendPosition(row: row, depth: 0, via: IntEdge(parent: -1, child: -1, label: -1), from: -1)
                }
            }
        }
        try startRows()
        for p in 0..<g.count where g.rows.kind[Int(g.rowAt[p])] < 0 { g.missing.append(startKeys[p]) }
        // A start's rank among starts by key, so the least edge into a node can be chosen
        // by position (later levels are in key order already).
        let startRank: [Int32] = {
            var r = [Int32](repeating: 0, count: g.count)
            let rowAt = g.rowAt
            let byKey: [Int] = g.rows.withOrder { o in (0..<rowAt.count).sorted { o.keyLess(Int(rowAt[$0]), Int(rowAt[$1])) } }
            for (rank, p) in byKey.enumerated() {
                r[p] = Int32(rank)
            }
            return r
        }()
        let labelRank = Self.labelRanks(g.labels)
        var frontier = handleAt.filter { $0 >= 0 }
        var level: Int32 = 0
        while !frontier.isEmpty, maxDepth.map({ level < $0 }) ?? true {
            var edges = try source.edges(of: frontier, direction)
            if level == 0, let split {
                edges = edges.filter { e in
                    let l = g.labels[Int(e.label)]
                    return l.split == nil || l.split == split || l.role == "output"
                }
            }
            // Each node is expanded once, so each edge arrives once. Of the edges reaching a
            // new node in this level, the least (by the far end's key, then role and split)
            // is its `via`, whatever order the source returned them in. New nodes get a
            // provisional number (encoded as -2 - n in `positionOf`) until sorted by key.
            let base = Int32(g.count)
            var newHandles: [Int32] = []
            var best: [IntEdge] = []
            var bestFrom: [Int32] = []
            let firstFollowed = g.followed.count
            g.followed.reserveCapacity(g.followed.count + edges.count)
            func rank(_ p: Int32) -> Int32 { level == 0 ? startRank[Int(p)] : p }
            for e in edges {
                let (to, from) = direction == .down ? (e.child, e.parent) : (e.parent, e.child)
                let f = positionOf[Int(from)]
                var t = positionOf[Int(to)]
                if t == -1 {
                    t = -2 - Int32(newHandles.count)
                    positionOf[Int(to)] = t
                    newHandles.append(to)
                    best.append(IntEdge(parent: 0, child: 0, label: e.label))
                    bestFrom.append(f)
                } else if t <= -2 {
                    let n = Int(-2 - t)
                    let (bf, bl) = (rank(bestFrom[n]), labelRank[Int(best[n].label)])
                    let (ef, el) = (rank(f), labelRank[Int(e.label)])
                    if (ef, el) < (bf, bl) {
                        best[n].label = e.label
                        bestFrom[n] = f
                    }
                }
                g.followed.append(direction == .down ? IntEdge(parent: f, child: t, label: e.label)
                                  : IntEdge(parent: t, child: f, label: e.label))
            }
            let fetched = try source.rows(newHandles, into: &g.rows)
            if fetched.replaced {
                // The source handed over a table of every node: earlier rows are void.
                try startRows()
                let later = try source.rows(Array(handleAt[startKeys.count...]), into: &g.rows).rows
                for (i, row) in later.enumerated() { g.rowAt[startKeys.count + i] = row }
            }
            let newRows = fetched.rows
            let sorted = g.rows.withOrder { o in o.sortedByKey(newRows) }
            var final = [Int32](repeating: 0, count: newHandles.count)
            for (rank, n) in sorted.enumerated() { final[n] = base + Int32(rank) }
            func resolve(_ p: Int32) -> Int32 { p <= -2 ? final[Int(-2 - p)] : p }
            for j in firstFollowed..<g.followed.count {
                g.followed[j].parent = resolve(g.followed[j].parent)
                g.followed[j].child = resolve(g.followed[j].child)
            }
            var next: [Int32] = []
            next.reserveCapacity(newHandles.count)
            for n in sorted {
                let h = newHandles[n]
                let p = final[n]
                positionOf[Int(h)] = p
                handleAt.append(h)
                next.append(h)
                let f = bestFrom[n]
                let via = direction == .down ? IntEdge(parent: f, child: p, label: best[n].label)
                    : IntEdge(parent: p, child: f, label: best[n].label)
                g.appendPosition(row: newRows[n], depth: level + 1, via: via, from: f)
                if g.rows.kind[Int(newRows[n])] < 0 { g.missing.append(g.key(at: Int(p))) }
            }
            frontier = next
            level += 1
        }
        g.cycles = findCycles(g)
        return g
    }

    /// Each label's rank in (role, split) order, the order `sortedEdges` uses after the ends.
    static func labelRanks(_ labels: [EdgeLabel]) -> [Int32] {
        var out = [Int32](repeating: 0, count: labels.count)
        for (rank, i) in labels.indices.sorted(by: { (labels[$0].role, labels[$0].split ?? "") < (labels[$1].role, labels[$1].split ?? "") })
            .enumerated() {
            out[i] = Int32(rank)
        }
        return out
    }

    /// Cycles among the edges a walk followed (Kahn's algorithm over arrays: what cannot
    /// be sorted lies on or behind a cycle; one loop is traced from there).
    private func findCycles(_ g: LineageGraph) -> [[String]] {
        let n = g.count
        var start = [Int32](repeating: 0, count: n + 1)
        var indegree = [Int32](repeating: 0, count: n)
        for e in g.followed where e.parent >= 0 && e.child >= 0 {
            start[Int(e.parent) + 1] += 1
            indegree[Int(e.child)] += 1
        }
        for i in 0..<n { start[i + 1] += start[i] }
        var fill = Array(start[0..<n])
        var out = [Int32](repeating: 0, count: Int(start[n]))
        for e in g.followed where e.parent >= 0 && e.child >= 0 {
            out[Int(fill[Int(e.parent)])] = e.child
            fill[Int(e.parent)] += 1
        }
        var ready = (0..<n).filter { indegree[$0] == 0 }
        while let k = ready.popLast() {
            for c in out[Int(start[k])..<Int(start[k + 1])] {
                indegree[Int(c)] -= 1
                if indegree[Int(c)] == 0 { ready.append(Int(c)) }
            }
        }
        let stuck = Set((0..<n).filter { indegree[$0] > 0 })
        let keyLess = { (a: Int, b: Int) in g.key(at: a) < g.key(at: b) }
        guard let first = stuck.min(by: keyLess) else { return [] }
        // Follow edges inside the stuck set until a node repeats: that stretch is a loop.
        var path: [Int] = [first]
        var index: [Int: Int] = [first: 0]
        var current = first
        while let next = out[Int(start[current])..<Int(start[current + 1])].map({ Int($0) }).filter({ stuck.contains($0) })
            .min(by: keyLess) {
            if let at = index[next] { return [path[at...].map(g.key(at:))] }
            index[next] = path.count
            path.append(next)
            current = next
        }
        return []
    }
}
