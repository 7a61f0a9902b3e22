import MLVBasics
import MLVModel
import MLVStore

/// The part of the lineage graph a walk reached: nodes, the edges it followed, how each
/// node was first reached (so every node has one path back to where the walk began),
/// and what went wrong on the way (missing objects, cycles).
public struct LineageGraph: Sendable {
    /// Where the walk began.
    public var starts: [String]
    /// Every node reached that exists, by key.
    public var nodes: [String: LineageNode] = [:]
    /// Keys in the order reached (starts first), including missing ones.
    public var order: [String] = []
    /// The edges followed, in the order followed.
    public var edges: [LineageEdge] = []
    /// How each node other than a start was first reached.
    public var via: [String: LineageEdge] = [:]
    public var depth: [String: Int] = [:]
    /// Keys referenced along the way whose object is missing or unreadable.
    public var missing: [String] = []
    /// Cycles found (hand-edited manifests), each as keys around the loop.
    public var cycles: [[String]] = []

    /// An empty walk from `starts`; walks fill in the rest.
    public init(starts: [String]) { self.starts = starts }

    /// The keys from a start to `key`, following `via`.
    public func pathKeys(to key: String) -> [String] {
        var keys = [key]
        var current = key
        while let e = via[current], keys.count <= order.count {
            current = e.child == current ? e.parent : e.child
            keys.append(current)
        }
        return keys.reversed()
    }

    /// The edges in a fixed order (by parent, child, role, split), for output.
    public var sortedEdges: [LineageEdge] {
        edges.sorted { ($0.parent, $0.child, $0.role, $0.split ?? "") < ($1.parent, $1.child, $1.role, $1.split ?? "") }
    }

    /// How a key is shown: the node's display, or `missing <id>` when it is not there.
    public func display(_ key: String) -> String {
        nodes[key]?.display ?? "missing object \(key.prefix(12))"
    }

    /// What went wrong during the walk, for people.
    public var problems: [String] {
        missing.map { key in
            let by = via[key].map { e in " (\(e.role) of \(display(e.child == key ? e.parent : e.child)))" } ?? ""
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
            for key in down.order where up.depth[key] == nil {
                up.order.append(key)
                up.depth[key] = down.depth[key]
                up.via[key] = down.via[key]
                if let n = down.nodes[key] { up.nodes[key] = n }
            }
            up.edges += down.edges
            up.missing = Array(Set(up.missing + down.missing)).sorted()
            up.cycles += down.cycles
            return up
        }
        var g = LineageGraph(starts: starts)
        g.nodes = try source.nodes(starts)
        for s in starts where g.depth[s] == nil {
            g.depth[s] = 0
            g.order.append(s)
            if g.nodes[s] == nil { g.missing.append(s) }
        }
        var frontier = starts
        var level = 0
        while !frontier.isEmpty, maxDepth.map({ level < $0 }) ?? true {
            var edges = try source.edges(of: frontier, direction)
            if level == 0, let split { edges = edges.filter { $0.split == nil || $0.split == split || $0.role == "output" } }
            // Each node is expanded once, so each edge arrives once. Of the edges reaching a
            // new node in this level, the least one is its `via`, whatever order the source
            // returned them in, so every source gives the same walk.
            var reached: [String: LineageEdge] = [:]
            reached.reserveCapacity(edges.count)
            g.edges.reserveCapacity(g.edges.count + edges.count)
            for e in edges {
                g.edges.append(e)
                let to = direction == .down ? e.child : e.parent
                guard g.depth[to] == nil else { continue }
                if let best = reached[to], !Self.edgePrecedes(e, best) { continue }
                reached[to] = e
            }
            let next = reached.keys.sorted()
            g.depth.reserveCapacity(g.depth.count + next.count)
            g.via.reserveCapacity(g.via.count + next.count)
            g.nodes.reserveCapacity(g.nodes.count + next.count)
            for key in next {
                g.depth[key] = level + 1
                g.via[key] = reached[key]
                g.order.append(key)
            }
            let found = try source.nodes(next)
            for key in next {
                if let n = found[key] { g.nodes[key] = n } else { g.missing.append(key) }
            }
            frontier = next
            level += 1
        }
        g.cycles = findCycles(g)
        return g
    }

    /// The order `sortedEdges` uses.
    static func edgePrecedes(_ a: LineageEdge, _ b: LineageEdge) -> Bool {
        (a.parent, a.child, a.role, a.split ?? "") < (b.parent, b.child, b.role, b.split ?? "")
    }

    /// Cycles among the edges a walk followed (Kahn's algorithm over node numbers: what
    /// cannot be sorted lies on or behind a cycle; one loop is traced from there).
    private func findCycles(_ g: LineageGraph) -> [[String]] {
        var number: [String: Int] = [:]
        var keys: [String] = []
        func n(_ key: String) -> Int {
            if let i = number[key] { return i }
            number[key] = keys.count
            keys.append(key)
            return keys.count - 1
        }
        for k in g.order { _ = n(k) }
        var out: [[Int]] = []
        var indegree: [Int] = []
        for e in g.edges {
            let p = n(e.parent), c = n(e.child)
            if keys.count > out.count {
                out += Array(repeating: [], count: keys.count - out.count)
                indegree += Array(repeating: 0, count: keys.count - indegree.count)
            }
            out[p].append(c)
            indegree[c] += 1
        }
        var ready = indegree.indices.filter { indegree[$0] == 0 }
        while let k = ready.popLast() {
            for c in out[k] {
                indegree[c] -= 1
                if indegree[c] == 0 { ready.append(c) }
            }
        }
        let stuck = Set(indegree.indices.filter { indegree[$0] > 0 })
        guard let first = stuck.min(by: { keys[$0] < keys[$1] }) else { return [] }
        // Follow edges inside the stuck set until a node repeats: that stretch is a loop.
        var path: [Int] = [first]
        var index: [Int: Int] = [first: 0]
        var current = first
        while let next = out[current].filter({ stuck.contains($0) }).min(by: { keys[$0] < keys[$1] }) {
            if let at = index[next] { return [path[at...].map { keys[$0] }] }
            index[next] = path.count
            path.append(next)
            current = next
        }
        return []
    }
}
