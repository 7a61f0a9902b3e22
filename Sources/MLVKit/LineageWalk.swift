import MLVBasics
import MLVModel
import MLVStore

/// The part of the lineage graph a walk reached: nodes, the edges it followed, how each
/// node was first reached (so every node has one path back to where the walk began),
/// and what went wrong on the way (missing objects, cycles). Nodes are held by their
/// position in `order`, so a walk over a whole history hashes each key once.
public struct LineageGraph: Sendable {
    /// Where the walk began.
    public var starts: [String]
    /// Keys in the order reached (starts first), including missing ones.
    public private(set) var order: [String] = []
    /// The edges followed, in the order followed.
    public var edges: [LineageEdge] = []
    /// Keys referenced along the way whose object is missing or unreadable.
    public var missing: [String] = []
    /// Cycles found (hand-edited manifests), each as keys around the loop.
    public var cycles: [[String]] = []
    /// Each key's position in `order`.
    var position: [String: Int] = [:]
    /// By position: the node (nil when missing), its depth, the edge it was first reached
    /// by and the position at that edge's other end (-1 for starts).
    var nodeAt: [LineageNode?] = []
    var depthAt: [Int32] = []
    var viaAt: [LineageEdge?] = []
    var fromAt: [Int32] = []

    /// An empty walk from `starts`; walks fill in the rest.
    public init(starts: [String]) { self.starts = starts }

    /// Adds `key` as reached (after every node on its path back to a start); a key
    /// already present is left as it was.
    public mutating func append(_ key: String, node: LineageNode?, depth: Int, via: LineageEdge?) {
        let from = via.flatMap { e in position[e.child == key ? e.parent : e.child] } ?? -1
        append(key, node: node, depth: Int32(depth), via: via, from: Int32(from))
    }

    mutating func append(_ key: String, node: LineageNode?, depth: Int32, via: LineageEdge?, from: Int32) {
        guard position[key] == nil else { return }
        appendNew(key, node: node, depth: depth, via: via, from: from)
    }

    /// `append` for a key known to be new (or holding a provisional position).
    mutating func appendNew(_ key: String, node: LineageNode?, depth: Int32, via: LineageEdge?, from: Int32) {
        position[key] = order.count
        order.append(key)
        nodeAt.append(node)
        depthAt.append(depth)
        viaAt.append(via)
        fromAt.append(from)
    }

    /// Every node reached that exists, by key.
    public var nodes: [String: LineageNode] {
        var out: [String: LineageNode] = [:]
        out.reserveCapacity(order.count)
        for (i, n) in nodeAt.enumerated() { if let n { out[order[i]] = n } }
        return out
    }

    /// Every node reached that exists, in the order reached.
    public var reachedNodes: [LineageNode] { nodeAt.compactMap { $0 } }

    /// The node `key` names, when it was reached and exists.
    public func node(_ key: String) -> LineageNode? { position[key].flatMap { nodeAt[$0] } }

    /// Hops from the nearest start to `key` (nil when not reached).
    public func depth(of key: String) -> Int? { position[key].map { Int(depthAt[$0]) } }

    /// How `key` was first reached (nil for a start or a key not reached).
    public func via(of key: String) -> LineageEdge? { position[key].flatMap { viaAt[$0] } }

    /// The keys from a start to `key`, following how each was first reached.
    public func pathKeys(to key: String) -> [String] {
        guard let p = position[key] else { return [key] }
        return pathPositions(to: p).map { order[$0] }
    }

    /// Positions from a start to position `p`.
    func pathPositions(to p: Int) -> [Int] {
        var out = [p]
        var current = p
        while fromAt[current] >= 0, out.count <= order.count {
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
        node(key)?.display ?? "missing object \(key.prefix(12))"
    }

    /// How the node at position `p` is shown.
    func display(at p: Int) -> String {
        nodeAt[p]?.display ?? "missing object \(order[p].prefix(12))"
    }

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
    func walkLineage(_ source: LineageSource, from starts: [String], _ direction: LineageDirection, maxDepth: Int? = nil,
                     split: String? = nil) throws -> LineageGraph {
        if direction == .both {
            var up = try walkLineage(source, from: starts, .up, maxDepth: maxDepth)
            let down = try walkLineage(source, from: starts, .down, maxDepth: maxDepth, split: split)
            for (p, key) in down.order.enumerated() where up.position[key] == nil {
                up.append(key, node: down.nodeAt[p], depth: Int(down.depthAt[p]), via: down.viaAt[p])
            }
            up.edges += down.edges
            up.missing = Array(Set(up.missing + down.missing)).sorted()
            up.cycles += down.cycles
            return up
        }
        var g = LineageGraph(starts: starts)
        let startNodes = try source.nodes(starts)
        for s in starts where g.position[s] == nil {
            g.append(s, node: startNodes[s], depth: 0, via: nil, from: -1)
            if startNodes[s] == nil { g.missing.append(s) }
        }
        // Every edge followed as (parent, child) positions, for the cycle check.
        var ends: [(parent: Int32, child: Int32)] = []
        var frontier = starts
        var level: Int32 = 0
        while !frontier.isEmpty, maxDepth.map({ level < $0 }) ?? true {
            var edges = try source.edges(of: frontier, direction)
            if level == 0, let split { edges = edges.filter { $0.split == nil || $0.split == split || $0.role == "output" } }
            // Each node is expanded once, so each edge arrives once. Of the edges reaching a
            // new node in this level, the least one is its `via`, whatever order the source
            // returned them in, so every source gives the same walk. New nodes get a
            // provisional position (from `base` up) until the level is sorted by key.
            let base = g.order.count
            var newKeys: [String] = []
            var best: [Int] = []  // by provisional position: the edge that reached it
            var bestFrom: [Int32] = []
            let firstEnd = ends.count
            ends.reserveCapacity(ends.count + edges.count)
            // Sources return a frontier node's edges together: its position is looked up once.
            var lastFrom = "", f: Int32 = -1
            for (i, e) in edges.enumerated() {
                let (to, from) = direction == .down ? (e.child, e.parent) : (e.parent, e.child)
                if i == 0 || from != lastFrom {
                    f = Int32(g.position[from] ?? -1)
                    lastFrom = from
                }
                if let p = g.position[to] {
                    if p >= base, Self.edgePrecedes(e, edges[best[p - base]]) {
                        best[p - base] = i
                        bestFrom[p - base] = f
                    }
                    ends.append(direction == .down ? (f, Int32(p)) : (Int32(p), f))
                } else {
                    g.position[to] = base + newKeys.count
                    let t = Int32(base + newKeys.count)
                    ends.append(direction == .down ? (f, t) : (t, f))
                    newKeys.append(to)
                    best.append(i)
                    bestFrom.append(f)
                }
            }
            let sorted = newKeys.indices.sorted { newKeys[$0] < newKeys[$1] }
            var final = [Int32](repeating: 0, count: newKeys.count)
            for (rank, t) in sorted.enumerated() { final[t] = Int32(base + rank) }
            for j in firstEnd..<ends.count {
                if Int(ends[j].parent) >= base { ends[j].parent = final[Int(ends[j].parent) - base] }
                if Int(ends[j].child) >= base { ends[j].child = final[Int(ends[j].child) - base] }
            }
            let next = sorted.map { newKeys[$0] }
            let found = try source.nodeList(next)
            for (rank, t) in sorted.enumerated() {
                let key = newKeys[t]
                let node = found[rank]
                g.appendNew(key, node: node, depth: level + 1, via: edges[best[t]], from: bestFrom[t])
                if node == nil { g.missing.append(key) }
            }
            g.edges += edges
            frontier = next
            level += 1
        }
        g.cycles = findCycles(g, ends)
        return g
    }

    /// The order `sortedEdges` uses.
    static func edgePrecedes(_ a: LineageEdge, _ b: LineageEdge) -> Bool {
        (a.parent, a.child, a.role, a.split ?? "") < (b.parent, b.child, b.role, b.split ?? "")
    }

    /// Cycles among the edges a walk followed, given as (parent, child) positions (Kahn's
    /// algorithm over arrays: what cannot be sorted lies on or behind a cycle; one loop
    /// is traced from there).
    private func findCycles(_ g: LineageGraph, _ ends: [(parent: Int32, child: Int32)]) -> [[String]] {
        let n = g.order.count
        var start = [Int32](repeating: 0, count: n + 1)
        var indegree = [Int32](repeating: 0, count: n)
        for (f, t) in ends where f >= 0 && t >= 0 {
            start[Int(f) + 1] += 1
            indegree[Int(t)] += 1
        }
        for i in 0..<n { start[i + 1] += start[i] }
        var fill = Array(start[0..<n])
        var out = [Int32](repeating: 0, count: Int(start[n]))
        for (f, t) in ends where f >= 0 && t >= 0 {
            out[Int(fill[Int(f)])] = t
            fill[Int(f)] += 1
        }
        var ready = (0..<n).filter { indegree[$0] == 0 }
        while let k = ready.popLast() {
            for c in out[Int(start[k])..<Int(start[k + 1])] {
                indegree[Int(c)] -= 1
                if indegree[Int(c)] == 0 { ready.append(Int(c)) }
            }
        }
        let stuck = Set((0..<n).filter { indegree[$0] > 0 })
        guard let first = stuck.min(by: { g.order[$0] < g.order[$1] }) else { return [] }
        // Follow edges inside the stuck set until a node repeats: that stretch is a loop.
        var path: [Int] = [first]
        var index: [Int: Int] = [first: 0]
        var current = first
        while let next = out[Int(start[current])..<Int(start[current + 1])].map({ Int($0) }).filter({ stuck.contains($0) })
            .min(by: { g.order[$0] < g.order[$1] }) {
            if let at = index[next] { return [path[at...].map { g.order[$0] }] }
            index[next] = path.count
            path.append(next)
            current = next
        }
        return []
    }
}
