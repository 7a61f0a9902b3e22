import ArgumentParser
import MLVBasics
import MLVKit
import MLVModel

/// How `lineage` and `blame` print a graph.
enum GraphFormat: String, ExpressibleByArgument, CaseIterable {
    case tree, json, dot, mermaid
}

/// `--up`, `--down`, `--both`.
enum DirectionFlag: String, EnumerableFlag {
    case up, down, both

    static func help(for value: DirectionFlag) -> ArgumentHelp? {
        switch value {
        case .up: return "What it was made from (default)."
        case .down: return "What was made from it."
        case .both: return "Both."
        }
    }

    var direction: LineageDirection { LineageDirection(rawValue: rawValue)! }
}

/// Stages, aliases and taints of every node in a graph.
func graphMarks(_ repo: Repository, _ g: LineageGraph) throws -> GraphMarks {
    var marks = GraphMarks(holdings: repo.holdings(in: g), highlighted: Set(g.starts))
    let ids = g.reachedNodes.filter { $0.kind == .dataset || $0.kind == .model }.map(\.id)
    for (id, list) in try repo.taintMarks(of: ids) {
        marks.taints[id.hex] = list.map(\.summary).joined(separator: "; ")
    }
    return marks
}

func printGraph(_ g: LineageGraph, _ direction: LineageDirection, format: GraphFormat, marks: GraphMarks) {
    switch format {
    case .json: sayJSON(graphJSON(g, marks: marks))
    case .dot: say(renderDOT(g, marks: marks))
    case .mermaid: say(renderMermaid(g, marks: marks))
    case .tree:
        let width = terminalWidth()
        for line in renderTree(g, direction, marks: marks) { say(fit(line, width)) }
        for p in g.problems { say(fit("! " + p, width)) }
    }
}

struct LineageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lineage",
        abstract: "Show where a version came from (--up), what was made from it (--down), or both.",
        discussion: """
            Walks the lineage edges recorded in manifests: a version's inputs (with their roles \
            and splits), the run that wrote it, a run's inputs, code and outputs. Models show the \
            stages and aliases they hold now; tainted versions say what taints them. A missing \
            object or a cycle (hand-edited manifests) is reported and walked around. \
            --format dot renders with Graphviz (dot -Tsvg), --format mermaid in Markdown. \
            Exit codes: 0 ok; 2 unknown ref; 4 damaged store; 5 ambiguous id prefix.
            """)
    @Argument(help: "A version (NAME@vN, NAME@STAGE, NAME, an id prefix) or a run id.") var ref: String
    @Flag var direction: DirectionFlag = .up
    @Option(help: "At most this many hops.") var depth: Int?
    @Option(help: "tree, json, dot or mermaid.") var format: GraphFormat = .tree
    @OptionGroup var store: StoreOptions

    func validate() throws {
        if let depth, depth < 0 { throw ValidationError("--depth must be 0 or more") }
    }

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            let g = try repo.lineage(of: ref, direction.direction, depth: depth)
            printGraph(g, direction.direction, format: format, marks: try graphMarks(repo, g))
        }
    }
}

struct BlameCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blame",
        abstract: "Everything downstream of a bad input: datasets, runs and models, and which stage each model holds now.",
        discussion: """
            TARGET is a version (mnist-raw@v3), a run id, or a blob id (anything whose files or \
            code held that exact file). Or name code: --code PATH --rev REV (the content the file \
            had at a git revision), --commit SHA [--fixed SHA] (runs whose recorded commit \
            descends from SHA and not from the fix), --file PATH --contains TEXT (runs whose code \
            snapshot had a line containing TEXT in PATH). Paths are relative to the repository. \
            Output groups code, datasets, runs and models; each model lists the stages and \
            aliases it holds (production first) and the path from the target. A target that \
            matches nothing prints so and exits 0. \
            Exit codes: 0 ok; 1 --fail-if-stage found a model holding that stage, or \
            --fail-if-empty found nothing; 2 unknown ref, or a commit or path git does not \
            know; 4 damaged store; 5 ambiguous id prefix, --commit outside a git repository; 64 usage.
            """)
    @Argument(help: "A version, run id or blob id.") var target: String?
    @Option(help: ArgumentHelp("A file in git (with --rev).", valueName: "PATH")) var code: String?
    @Option(help: ArgumentHelp("The git revision for --code.", valueName: "REV")) var rev: String?
    @Option(help: ArgumentHelp("A bad git commit.", valueName: "SHA")) var commit: String?
    @Option(help: ArgumentHelp("The commit that fixed it (with --commit).", valueName: "SHA")) var fixed: String?
    @Option(help: ArgumentHelp("A file in code snapshots (with --contains).", valueName: "PATH")) var file: String?
    @Option(help: ArgumentHelp("Text on one line of --file.", valueName: "TEXT")) var contains: String?
    @Option(help: "tree, json, dot or mermaid.") var format: GraphFormat = .tree
    @Flag(help: "Print JSON (same as --format json).") var json = false
    @Option(help: ArgumentHelp("Exit 1 when an affected model holds this stage.", valueName: "STAGE")) var failIfStage: String?
    @Flag(help: "Exit 1 when nothing is affected.") var failIfEmpty = false
    @Flag(help: "List every affected thing (the tree shows 20 per group, and every model holding a stage).") var all = false
    @OptionGroup var store: StoreOptions

    var blameTarget: BlameTarget {
        if let code, let rev { return .code(path: code, rev: rev) }
        if let commit { return .commit(commit, fixed: fixed) }
        if let file, let contains { return .contains(file: file, text: contains) }
        return .ref(target ?? "")
    }

    func validate() throws {
        let kinds = [target != nil, code != nil || rev != nil, commit != nil, file != nil || contains != nil].filter { $0 }.count
        if kinds != 1 { throw ValidationError("name one target: TARGET, --code PATH --rev REV, --commit SHA, or --file PATH --contains TEXT") }
        if (code == nil) != (rev == nil) { throw ValidationError("--code and --rev go together") }
        if (file == nil) != (contains == nil) { throw ValidationError("--file and --contains go together") }
        if fixed != nil && commit == nil { throw ValidationError("--fixed needs --commit") }
        if json && format != .tree && format != .json { throw ValidationError("--json and --format \(format.rawValue) conflict") }
    }

    func run() throws {
        var failed = false
        try MLVCommands.run {
            let repo = try store.open()
            let result = try repo.blame(blameTarget)
            if let stage = failIfStage { failed = result.holds(stage) }
            if failIfEmpty && result.affected.isEmpty { failed = true }
            let format = json ? .json : self.format
            switch format {
            case .json: say(String(decoding: result.jsonBytes, as: UTF8.self))
            case .dot, .mermaid:
                var marks = try graphMarks(repo, result.graph)
                marks.highlighted = Set(result.graph.starts)
                say(format == .dot ? renderDOT(result.graph, marks: marks) : renderMermaid(result.graph, marks: marks))
            case .tree:
                renderBlame(result)
            }
        }
        if failed { throw ExitCode(MLVExit.checkFailed) }
    }

    func renderBlame(_ result: BlameResult) {
        let width = terminalWidth()
        let title = "blame \(result.target)"
        guard !result.affected.isEmpty || !result.matched.isEmpty else {
            say("\(title): nothing matches; nothing is affected")
            for p in result.problems { say(fit("! " + p, width)) }
            return
        }
        for m in result.matched { say(fit("\(title): \(m)", width)) }
        let groups: [(String, LineageKind)] = [("code", .code), ("datasets", .dataset), ("runs", .run), ("models", .model)]
        // Groups hold indices into `affected`, not copies of its items (125,000 of them for a whole history).
        let affected = result.affected
        let present = groups.filter { g in affected.contains { $0.kind == g.1 } }
        if present.isEmpty { say("nothing downstream is affected") }
        for (gi, (label, kind)) in present.enumerated() {
            let items = affected.indices.filter { affected[$0].kind == kind }
            let lastGroup = gi == present.count - 1
            let held = kind == .model ? items.filter { !affected[$0].stages.isEmpty }.count : 0
            say((lastGroup ? "└─ " : "├─ ") + "\(label) (\(items.count)" + (held > 0 ? ", \(held) holding a stage" : "") + ")")
            let indent = lastGroup ? "   " : "│  "
            // Models holding a stage come first and are always shown.
            let shown = all ? items : Array(items.prefix(max(20, held)))
            for (i, index) in shown.enumerated() {
                let item = affected[index]
                let last = i == shown.count - 1 && shown.count == items.count
                var line = indent + (last ? "└─ " : "├─ ") + item.display
                let badge = (item.stages + item.aliases.map { "@" + $0 })
                if !badge.isEmpty { line += "  [" + badge.joined(separator: ", ") + "]" }
                say(fit(line, width))
                if kind == .model || kind == .dataset {
                    say(fit(indent + (last ? "   " : "│  ") + "via " + result.path(item).dropLast().joined(separator: " -> "), width))
                }
            }
            if shown.count < items.count {
                say(fit(indent + "└─ … and \(items.count - shown.count) more \(label) (--all lists them, --json gives every one with its path)", width))
            }
        }
        for p in result.problems { say(fit("! " + p, width)) }
    }
}

struct TaintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "taint",
        abstract: "Mark a dataset or model version as known bad, with a reason.",
        discussion: """
            Everything downstream shows "tainted via REF" in show, lineage, models and registry, \
            and a tainted model version cannot be promoted without --force and a reason. Taints \
            are events in a hash-chained list (refs/taint/head) that audit --verify checks. \
            Exit codes: 0 ok; 2 unknown ref; 3 another taint change won a race; 5 already tainted, empty reason.
            """)
    @Argument(help: "A version: NAME@vN, model:NAME@vN, an id prefix.") var ref: String
    @Option(name: .shortAndLong, help: "Why it is bad.") var message: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let (id, e) = try store.open().taint(ref, reason: message)
            if output.json { sayJSON(.object(["id": .string(id.hex), "event": e.json])); return }
            say("tainted \(e.ref): \(e.message) (taint event #\(e.seq) \(id.short) by \(e.actor))")
        }
    }
}

struct UntaintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "untaint",
        abstract: "Lift a taint, with a reason.",
        discussion: "Recorded as an event in the taint list. Exit codes: 0 ok; 2 unknown ref or not tainted; 3 another taint change won a race; 5 empty reason.")
    @Argument(help: "A tainted version.") var ref: String
    @Option(name: .shortAndLong, help: "Why it is fine after all.") var message: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let (id, e) = try store.open().untaint(ref, reason: message)
            if output.json { sayJSON(.object(["id": .string(id.hex), "event": e.json])); return }
            say("untainted \(e.ref): \(e.message) (taint event #\(e.seq) \(id.short) by \(e.actor))")
        }
    }
}

struct ReindexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reindex",
        abstract: "Rebuild the derived lineage index (.mlv/index.sqlite) from refs and manifests.",
        discussion: """
            The index is derived: every query brings it up to date by itself, and deleting it \
            loses nothing. Reindex rebuilds it from scratch. \
            Exit codes: 0 ok; 2 no store; 4 the index cannot be written.
            """)
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let start = wallClockNanoseconds()
            let report = try store.open().reindex()
            let seconds = Double(wallClockNanoseconds() - start) / 1e9
            if output.json {
                sayJSON(.object(["path": .string(report.path), "seconds": .number(seconds),
                                 "counts": .object(report.counts.mapValues { .int(Int64($0)) })]))
                return
            }
            let c = report.counts
            say("reindexed \(c["nodes"] ?? 0) nodes, \(c["edges"] ?? 0) edges, \(c["trees"] ?? 0) trees in \((seconds * 1000).rounded() / 1000) s")
        }
    }
}
