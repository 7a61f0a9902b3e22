import MLVBasics
@testable import MLVCommands
import MLVKit
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A graph with every kind of node, a missing one, stages, a taint, and labels holding
/// the characters each syntax must escape.
func sampleGraph() -> (LineageGraph, GraphMarks) {
    func id(_ s: String) -> ObjectID { SHA256.hash(Array(s.utf8)) }
    var g = LineageGraph(starts: [id("raw").hex])
    let nodes = [
        LineageNode(key: id("raw").hex, kind: .dataset, name: "raw \"quoted\"", version: 3, id: id("raw"), created: ""),
        LineageNode(key: id("code").hex, kind: .code, name: "src/prep.py", version: nil, id: id("code"), created: ""),
        LineageNode(key: "00000000000000a1", kind: .run, name: "prep [v2] {x}", version: nil, id: id("run"), created: ""),
        LineageNode(key: id("clean").hex, kind: .dataset, name: "clean", version: 1, id: id("clean"), created: ""),
        LineageNode(key: id("model").hex, kind: .model, name: "digits", version: 4, id: id("model"), created: ""),
    ]
    for n in nodes { g.append(n.key, node: n, depth: 0, via: nil) }
    let ghost = id("ghost").hex
    g.append(ghost, node: nil, depth: 0, via: nil)
    g.missing = [ghost]
    g.edges = [
        LineageEdge(child: "00000000000000a1", parent: id("raw").hex, role: "raw"),
        LineageEdge(child: "00000000000000a1", parent: id("code").hex, role: "code"),
        LineageEdge(child: id("clean").hex, parent: "00000000000000a1", role: "output"),
        LineageEdge(child: id("model").hex, parent: id("clean").hex, role: "train", split: "train"),
        LineageEdge(child: id("model").hex, parent: ghost, role: "eval"),
    ]
    var marks = GraphMarks(highlighted: [id("raw").hex])
    marks.holdings[id("model").hex] = (["production"], ["champion"])
    marks.taints[id("clean").hex] = "tainted via raw@v3: \"bad\" labels"
    return (g, marks)
}

@Suite struct GraphRenderTests {
    /// Checks Mermaid flowchart syntax line by line: the header, node declarations with
    /// matched shape brackets and quoted labels free of raw quotes, edges and class lines
    /// naming declared nodes, and classes that are defined.
    static func validateMermaid(_ text: String) -> [String] {
        var problems: [String] = []
        let lines = text.split(separator: "\n").map(String.init)
        guard lines.first == "flowchart LR" else { return ["first line is '\(lines.first ?? "")', not 'flowchart LR'"] }
        let shapes: [(open: String, close: String)] = [("[(", ")]"), ("([", "])"), ("{{", "}}"), ("[", "]"), (">", "]")]
        var declared = Set<String>(), usedClasses = Set<String>(), definedClasses = Set<String>()
        func quotedLabelOK(_ s: Substring) -> Bool {
            s.count >= 2 && s.first == "\"" && s.last == "\"" && !s.dropFirst().dropLast().contains("\"")
        }
        for line in lines.dropFirst() {
            guard line.hasPrefix("  ") else { problems.append("not indented: \(line)"); continue }
            let body = line.dropFirst(2)
            if body.hasPrefix("classDef ") {
                let parts = body.split(separator: " ")
                if parts.count < 3 { problems.append("classDef without style: \(line)") } else { definedClasses.insert(String(parts[1])) }
            } else if body.hasPrefix("class ") {
                let parts = body.split(separator: " ")
                if parts.count != 3 || !declared.contains(String(parts[1])) { problems.append("class of undeclared node: \(line)") }
                if parts.count == 3 { usedClasses.insert(String(parts[2])) }
            } else if let arrow = body.firstRange(of: " -->|") {
                let from = String(body[..<arrow.lowerBound])
                let rest = body[arrow.upperBound...]
                guard let close = rest.firstRange(of: "| ") else { problems.append("edge label not closed: \(line)"); continue }
                if !quotedLabelOK(rest[..<close.lowerBound]) { problems.append("edge label not a clean quoted string: \(line)") }
                let to = String(rest[close.upperBound...])
                if !declared.contains(from) || !declared.contains(to) { problems.append("edge between undeclared nodes: \(line)") }
            } else {
                guard let idEnd = body.firstIndex(where: { !($0.isLetter || $0.isNumber) }) else { problems.append("bad node: \(line)"); continue }
                let id = String(body[..<idEnd])
                var rest = body[idEnd...]
                guard let shape = shapes.first(where: { rest.hasPrefix($0.open) }) else { problems.append("no shape: \(line)"); continue }
                rest = rest.dropFirst(shape.open.count)
                guard let classMark = rest.firstRange(of: ":::") else { problems.append("node without class: \(line)"); continue }
                usedClasses.insert(String(rest[classMark.upperBound...]))
                let inner = rest[..<classMark.lowerBound]
                guard inner.hasSuffix(shape.close) else { problems.append("shape '\(shape.open)' not closed by '\(shape.close)': \(line)"); continue }
                if !quotedLabelOK(inner.dropLast(shape.close.count)) { problems.append("label not a clean quoted string: \(line)") }
                if !declared.insert(id).inserted { problems.append("node declared twice: \(line)") }
            }
        }
        for c in usedClasses.subtracting(definedClasses) { problems.append("class '\(c)' is used but not defined") }
        return problems
    }

    @Test func mermaidIsStructurallyValid() {
        let (g, marks) = sampleGraph()
        let text = renderMermaid(g, marks: marks)
        #expect(Self.validateMermaid(text) == [], "\(text)")
        #expect(text.contains("[(\"raw #quot;quoted#quot;@v3\")]:::dataset"), "datasets are cylinders")
        #expect(text.contains("[\"model:digits@v4<br/>[production, @champion]\"]:::model"), "stages labelled")
        #expect(text.contains("class n3 tainted"))
        #expect(text.contains(":::missing"))
        #expect(Self.validateMermaid("flowchart LR\n  n0[\"a\"]:::x\n  n0 -->|\"r\"| n9") != [], "the validator rejects bad input")
    }

    @Test func dotHasShapesColoursAndEscapedLabels() {
        let (g, marks) = sampleGraph()
        let text = renderDOT(g, marks: marks)
        #expect(text.hasPrefix("digraph lineage {") && text.hasSuffix("}"))
        #expect(text.contains("shape=cylinder") && text.contains("shape=box") && text.contains("shape=ellipse") && text.contains("shape=note"))
        #expect(text.contains("raw \\\"quoted\\\"@v3"))
        #expect(text.contains("[production, @champion]"))
        #expect(text.contains("color=\"#dc2626\""), "tainted nodes have a red border")
    }

    static let dot: String? = ["/usr/bin/dot", "/usr/local/bin/dot"].first { (path: String) in access(path, X_OK) == 0 }

    @Test(.enabled(if: dot != nil, "graphviz 'dot' is not installed (apt-get install graphviz); DOT rendering not checked"))
    func dotRendersWithGraphviz() throws {
        let (g, marks) = sampleGraph()
        let dir = try TemporaryDirectory()
        try FS.atomicWrite(dir.appending("g.dot"), Array(renderDOT(g, marks: marks).utf8))
        let r = try runProgram(Self.dot!, ["-Tsvg", "g.dot"], in: dir.path)
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r)")
        #expect(r.stdout.contains("<svg"))
        // Every node was drawn, with its label.
        #expect(r.stdout.components("class=\"node\"") == g.order.count)
        #expect(r.stdout.contains("model:digits@v4"))
        #expect(r.stdout.contains("[production, @champion]"))
    }
}

extension String {
    func components(_ needle: String) -> Int { split(separator: needle, omittingEmptySubsequences: false).count - 1 }
}
