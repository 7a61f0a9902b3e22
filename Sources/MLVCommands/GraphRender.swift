import MLVBasics
import MLVKit
import MLVModel
#if canImport(Glibc)
import Glibc
#endif

/// What a rendered graph shows beside the lineage itself.
struct GraphMarks {
    /// Stages and aliases held now, by node key.
    var holdings: [String: (stages: [String], aliases: [String])] = [:]
    /// Taint summaries by node key.
    var taints: [String: String] = [:]
    /// Nodes drawn emphasised (the blamed thing, the ref asked about).
    var highlighted: Set<String> = []

    /// `[production, @champion]` or empty.
    func badge(_ key: String) -> String {
        guard let h = holdings[key] else { return "" }
        let parts = h.stages + h.aliases.map { "@" + $0 }
        return parts.isEmpty ? "" : "[" + parts.joined(separator: ", ") + "]"
    }
}

/// Graphviz DOT: datasets are cylinders, models boxes, runs ellipses, code notes, each
/// kind its own colour; stages and aliases are a second label line; tainted nodes have a
/// red border; edges point the way data flowed (input to what was made from it),
/// labelled with the role.
func renderDOT(_ g: LineageGraph, marks: GraphMarks) -> String {
    func quote(_ s: String) -> String {
        "\"" + s.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"").replacingAll("\n", with: "\\n") + "\""
    }
    let ids = nodeIDs(g)
    var out = ["digraph lineage {", "  rankdir=LR;", "  node [fontname=\"Helvetica\", style=filled];", "  edge [fontname=\"Helvetica\", fontsize=10];"]
    for key in g.order {
        var label = g.display(key)
        let badge = marks.badge(key)
        if !badge.isEmpty { label += "\n" + badge }
        if let t = marks.taints[key] { label += "\n" + t }
        var attrs: [String]
        switch g.node(key)?.kind {
        case .dataset: attrs = ["shape=cylinder", "fillcolor=\"#dbeafe\""]
        case .model: attrs = ["shape=box", "fillcolor=\"#dcfce7\""]
        case .run: attrs = ["shape=ellipse", "fillcolor=\"#fef3c7\""]
        case .code: attrs = ["shape=note", "fillcolor=\"#f3e8ff\""]
        case nil: attrs = ["shape=octagon", "fillcolor=\"#e5e7eb\"", "style=\"filled,dashed\""]
        }
        if marks.taints[key] != nil { attrs += ["color=\"#dc2626\"", "penwidth=2"] }
        if marks.highlighted.contains(key) { attrs += ["peripheries=2"] }
        out.append("  \(ids[key]!) [label=\(quote(label)), \(attrs.joined(separator: ", "))];")
    }
    for e in g.sortedEdges {
        guard let p = ids[e.parent], let c = ids[e.child] else { continue }
        let label = edgeLabel(e)
        out.append("  \(p) -> \(c) [label=\(quote(label))];")
    }
    out.append("}")
    return out.joined(separator: "\n")
}

/// Mermaid flowchart: the same shapes and colours as DOT in Mermaid's syntax
/// (`[(cylinder)]`, `[box]`, `([stadium])`, `>note]`), labels in quotes with `#quot;`
/// for quotes, one `classDef` per kind.
func renderMermaid(_ g: LineageGraph, marks: GraphMarks) -> String {
    func label(_ s: String) -> String {
        "\"" + s.replacingAll("\"", with: "#quot;").replacingAll("\n", with: "<br/>") + "\""
    }
    let ids = nodeIDs(g)
    var out = ["flowchart LR"]
    for key in g.order {
        var text = g.display(key)
        let badge = marks.badge(key)
        if !badge.isEmpty { text += "\n" + badge }
        if let t = marks.taints[key] { text += "\n" + t }
        let id = ids[key]!
        switch g.node(key)?.kind {
        case .dataset: out.append("  \(id)[(\(label(text)))]:::dataset")
        case .model: out.append("  \(id)[\(label(text))]:::model")
        case .run: out.append("  \(id)([\(label(text))]):::run")
        case .code: out.append("  \(id)>\(label(text))]:::code")
        case nil: out.append("  \(id){{\(label(text))}}:::missing")
        }
        if marks.taints[key] != nil { out.append("  class \(id) tainted") }
    }
    for e in g.sortedEdges {
        guard let p = ids[e.parent], let c = ids[e.child] else { continue }
        out.append("  \(p) -->|\(label(edgeLabel(e)))| \(c)")
    }
    out += [
        "  classDef dataset fill:#dbeafe,stroke:#1d4ed8",
        "  classDef model fill:#dcfce7,stroke:#15803d",
        "  classDef run fill:#fef3c7,stroke:#b45309",
        "  classDef code fill:#f3e8ff,stroke:#7e22ce",
        "  classDef missing fill:#e5e7eb,stroke:#6b7280,stroke-dasharray:4",
        "  classDef tainted stroke:#dc2626,stroke-width:3px",
    ]
    return out.joined(separator: "\n")
}

/// `train (split train)`: the role, and the split when only one was used.
private func edgeLabel(_ e: LineageEdge) -> String {
    e.role + (e.split.map { " (split \($0))" } ?? "")
}

/// `n0`, `n1`, ... in the order nodes were reached.
private func nodeIDs(_ g: LineageGraph) -> [String: String] {
    var ids: [String: String] = [:]
    for (i, key) in g.order.enumerated() { ids[key] = "n\(i)" }
    return ids
}

/// The graph as JSON: nodes (with holdings and taints), edges, problems.
func graphJSON(_ g: LineageGraph, marks: GraphMarks) -> JSON {
    .object([
        "start": .array(g.starts.map { .string($0) }),
        "nodes": .array(g.order.map { key in
            var o: [String: JSON] = ["key": .string(key), "depth": .int(Int64(g.depth(of: key) ?? 0))]
            if let n = g.node(key) {
                o["kind"] = .string(n.kind.rawValue)
                o["name"] = .string(n.name)
                o["version"] = n.version.map { .int(Int64($0)) } ?? .null
                o["id"] = .string(n.id.hex)
            } else {
                o["kind"] = .string("missing")
            }
            let h = marks.holdings[key]
            o["stages"] = .array((h?.stages ?? []).map { .string($0) })
            o["aliases"] = .array((h?.aliases ?? []).map { .string($0) })
            o["tainted"] = marks.taints[key].map { .string($0) } ?? .null
            return .object(o)
        }),
        "edges": .array(g.sortedEdges.map { e in
            .object(["child": .string(e.child), "parent": .string(e.parent), "role": .string(e.role),
                     "split": e.split.map { .string($0) } ?? .null])
        }),
        "problems": .array(g.problems.map { .string($0) }),
    ])
}

/// The lineage as an indented tree from the start: up lists what each node was made
/// from, down what was made from it. A node met again is shown once and then referred to.
func renderTree(_ g: LineageGraph, _ direction: LineageDirection, marks: GraphMarks) -> [String] {
    var lines: [String] = []
    func describe(_ key: String) -> String {
        var s = g.display(key)
        let badge = marks.badge(key)
        if !badge.isEmpty { s += "  " + badge }
        if let t = marks.taints[key] { s += "  ! " + t }
        return s
    }
    var byChild: [String: [LineageEdge]] = [:], byParent: [String: [LineageEdge]] = [:]
    for e in g.sortedEdges {
        byChild[e.child, default: []].append(e)
        byParent[e.parent, default: []].append(e)
    }
    func walk(_ key: String, _ dir: LineageDirection, prefix: String, shown: inout Set<String>) {
        let edges = dir == .up ? byChild[key] ?? [] : byParent[key] ?? []
        for (i, e) in edges.enumerated() {
            let last = i == edges.count - 1
            let other = dir == .up ? e.parent : e.child
            let role = e.role + (e.split.map { "#" + $0 } ?? "")
            let arrow = dir == .up ? "\(role) <- " : "\(role) -> "
            let again = !shown.insert(other).inserted
            lines.append(prefix + (last ? "└─ " : "├─ ") + arrow + describe(other) + (again ? "  (see above)" : ""))
            if !again { walk(other, dir, prefix: prefix + (last ? "   " : "│  "), shown: &shown) }
        }
    }
    for start in g.starts {
        lines.append(describe(start))
        var shown: Set<String> = [start]
        if direction == .up || direction == .both {
            if direction == .both { lines.append("upstream:") }
            walk(start, .up, prefix: "", shown: &shown)
        }
        if direction == .down || direction == .both {
            if direction == .both { lines.append("downstream:") }
            shown = [start]
            walk(start, .down, prefix: "", shown: &shown)
        }
    }
    return lines
}

/// The terminal's width when stdout is one, else nil (no truncation).
func terminalWidth() -> Int? {
    guard isatty(1) == 1 else { return nil }
    var size = winsize()
    guard ioctl(1, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 else { return nil }
    return Int(size.ws_col)
}

/// Cuts a line to `width` characters, ending it with `…` when cut.
func fit(_ line: String, _ width: Int?) -> String {
    guard let width, line.count > width else { return line }
    return String(line.prefix(width - 1)) + "…"
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
