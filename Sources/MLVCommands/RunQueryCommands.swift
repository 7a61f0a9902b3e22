import ArgumentParser
import MLVBasics
import MLVKit
import MLVModel
#if canImport(Glibc)
import Glibc
#endif

/// `--json` or `--csv` for commands that print a table.
struct TableOutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON (one line, sorted keys) instead of text.") var json = false
    @Flag(name: .long, help: "Print comma-separated values with a header row.") var csv = false

    func validate() throws {
        if json && csv { throw ValidationError("--json and --csv cannot be combined") }
    }
}

/// A number for people: at most six decimals, no trailing zeros.
func shortNumber(_ d: Double) -> String {
    guard d.isFinite else { return d.isNaN ? "nan" : (d > 0 ? "inf" : "-inf") }
    if abs(d) >= 1e15 || (d != 0 && abs(d) < 1e-6) { return "\(d)" }
    var s = "\((d * 1e6).rounded() / 1e6)"
    if s.hasSuffix(".0") { s.removeLast(2) }
    return s == "-0" ? "0" : s
}

/// `1.2s`, `3m04s`, `2h05m`.
func humanDuration(_ milliseconds: Int64?) -> String {
    guard let ms = milliseconds else { return "-" }
    if ms < 60_000 { return shortNumber((Double(ms) / 100).rounded() / 10) + "s" }
    let s = ms / 1000
    func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
    if s < 3600 { return "\(s / 60)m\(two(s % 60))s" }
    return "\(s / 3600)h\(two(s / 60 % 60))m"
}

/// One CSV field, quoted when it holds a comma, quote or line break.
func csvField(_ s: String) -> String {
    s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
        ? "\"" + s.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\"" : s
}

/// Writes bytes to stdout unbuffered (for logs, which may be large or arrive slowly).
func writeOut(_ bytes: UnsafeRawBufferPointer) throws {
    try FS.writeAll(1, bytes, path: "stdout")
}

func keyValues(_ d: [String: String]) -> String {
    d.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
}

func keyNumbers(_ d: [String: Double]) -> String {
    d.sorted { $0.key < $1.key }.map { "\($0.key)=\(shortNumber($0.value))" }.joined(separator: " ")
}

func numbersJSON(_ d: [String: Double]) -> JSON { .object(d.mapValues { JSON.number($0) }) }
func stringsJSON(_ d: [String: String]) -> JSON { .object(d.mapValues { .string($0) }) }

/// Prints a library error as a usage error (exit 64): for malformed `--where`/`--sort`.
func usage<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as MLVError { throw ValidationError("\(e)") }
}

// MARK: - runs

struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List runs (recorded, running, abandoned); filter and sort them, or list what was tried on some data.",
        discussion: """
            Fields for --where and --sort: params.NAME, metrics.NAME, meta.KEY, id, name, status, \
            started, ended, duration (seconds), inputs (ROLE=NAME@vN#SPLIT ...), command, author, \
            message, fingerprint, exit. Operators: = != < <= > >= and ~ (contains). Values compare \
            as numbers when both sides parse as numbers, else as text; a run without the field \
            matches no condition and sorts last. Every --where must hold. Runs under .mlv/active/ \
            show as running, or abandoned when their process is dead on this host. \
            --tried --input REF lists the parameter combinations of runs that read REF (a split \
            with #SPLIT), grouped by code snapshot, with each metric's best value (lowest for \
            loss/error-like names) and last value. \
            Exit codes: 0 ok; 2 no store or unknown --input ref; 4 a damaged run record; 5 an \
            ambiguous --input ref; 64 a \
            malformed --where or --sort.
            """)
    @Option(name: .customLong("where"), help: ArgumentHelp("A condition FIELD OP VALUE, e.g. 'params.lr<0.05'. Repeatable.", valueName: "EXPR"))
    var filters: [String] = []
    @Option(parsing: .unconditional, help: ArgumentHelp("Sort by FIELD, descending with a leading '-' (e.g. -metrics.acc).", valueName: "[-]FIELD"))
    var sort: String?
    @Option(help: "Show at most N runs.") var limit: Int?
    @Flag(help: "List the parameter combinations already tried on --input.") var tried = false
    @Option(help: ArgumentHelp("With --tried: the data, NAME@vN or NAME@vN#SPLIT.", valueName: "REF")) var input: String?
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: TableOutputOptions

    func validate() throws {
        _ = try usage { try filters.map(RunFilter.parse) }
        _ = try usage { try sort.map(RunSort.parse) }
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 or more") }
        if tried != (input != nil) { throw ValidationError("--tried and --input go together") }
        if tried && (output.csv || !filters.isEmpty || sort != nil || limit != nil) {
            throw ValidationError("--tried takes only --input and --json")
        }
    }

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            if tried, let input { return try showTried(repo, input) }
            let rows = try repo.queryRuns(where: try usage { try filters.map(RunFilter.parse) },
                                          sort: try usage { try sort.map(RunSort.parse) }, limit: limit)
            if output.json { return sayJSON(.array(rows.map(rowJSON))) }
            if output.csv { return printCSV(rows) }
            if rows.isEmpty { return say("no runs" + (filters.isEmpty ? " yet" : " match")) }
            say(table([["ID", "NAME", "STATUS", "STARTED", "DURATION", "PARAMS", "METRICS"]] + rows.map { r in
                [String(r.run.prefix(8)), r.name, r.status, r.started, humanDuration(r.durationMilliseconds),
                 keyValues(r.params), keyNumbers(r.metrics)]
            }))
        }
    }

    func rowJSON(_ r: RunRow) -> JSON {
        var o: [String: JSON] = [
            "run": .string(r.run), "name": .string(r.name), "status": .string(r.status), "started": .string(r.started),
            "params": stringsJSON(r.params), "metrics": numbersJSON(r.metrics), "inputs": .array(r.inputs.map { .string($0) }),
        ]
        if let ms = r.durationMilliseconds { o["duration"] = .number(Double(ms) / 1000) }
        if let m = r.record?.manifest {
            o["ended"] = .string(m.ended)
            o["fingerprint"] = .string(m.fingerprint.hex)
            o["id"] = .string(r.record!.id.hex)
        }
        if let a = r.active {
            o["host"] = .string(a.host)
            if let pid = a.pid { o["pid"] = .int(pid) }
            o["command"] = .array(a.command.map { .string($0) })
        }
        return .object(o)
    }

    func printCSV(_ rows: [RunRow]) {
        let params = Set(rows.flatMap(\.params.keys)).sorted(), metrics = Set(rows.flatMap(\.metrics.keys)).sorted()
        say((["id", "name", "status", "started", "duration"] + params.map { "params.\($0)" } + metrics.map { "metrics.\($0)" })
            .map(csvField).joined(separator: ","))
        for r in rows {
            let fields = [r.run, r.name, r.status, r.started, r.durationMilliseconds.map { "\(Double($0) / 1000)" } ?? ""]
                + params.map { r.params[$0] ?? "" } + metrics.map { r.metrics[$0].map { "\($0)" } ?? "" }
            say(fields.map(csvField).joined(separator: ","))
        }
    }

    func showTried(_ repo: Repository, _ input: String) throws {
        let (ref, combos) = try repo.triedCombinations(on: input)
        if output.json {
            return sayJSON(.object(["input": ref.json, "tried": .array(combos.map { c in
                var o: [String: JSON] = [
                    "params": stringsJSON(c.params), "best": numbersJSON(c.best), "last": numbersJSON(c.last),
                    "runs": .array(zip(c.runs, c.statuses).map { .object(["run": .string($0), "status": .string($1)]) }),
                ]
                if let code = c.code { o["code"] = .string(code.hex) }
                if let commit = c.commit { o["commit"] = .string(commit) }
                return .object(o)
            })]))
        }
        if combos.isEmpty { return say("nothing tried on \(ref.display) yet") }
        say("tried on \(ref.display): \(combos.count) combination\(combos.count == 1 ? "" : "s")")
        var lastCode: String?
        for c in combos {
            let code = c.code.map { "code \($0.short)" + (c.commit.map { " (commit \($0.prefix(12)))" } ?? "") } ?? "no code snapshot"
            if code != lastCode { say(code); lastCode = code }
            say("  \(c.params.isEmpty ? "(no params)" : keyValues(c.params))")
            say("    runs  " + zip(c.runs, c.statuses).map { "\($0.prefix(8)) \($1)" }.joined(separator: ", "))
            if !c.best.isEmpty { say("    best  \(keyNumbers(c.best))") }
            if !c.last.isEmpty { say("    last  \(keyNumbers(c.last))") }
        }
    }
}

// MARK: - show run

struct ShowRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Show a run: command, times, status, params, metrics, inputs, outputs, code, environment, system use.",
        discussion: "RUN is a run id, a unique prefix of 4+ hex digits, or a name (the newest run with it). Exit codes: 0 ok; 2 unknown run; 4 a damaged run or a missing blob; 5 an ambiguous prefix.")
    @Argument(help: ArgumentHelp("The run.", valueName: "run")) var runRef: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            switch try repo.locateRun(runRef) {
            case .recorded(let record): try show(try repo.runDetails(record), json: output.json)
            case .active(let a): showActive(a, metrics: repo.lastMetrics(active: a), json: output.json)
            }
        }
    }
}

/// A run that is still going: what its `state` says, and its metrics so far.
func showActive(_ a: ActiveRun, metrics: [String: Double], json: Bool) {
    if json {
        var o: [String: JSON] = ["run": .string(a.run), "name": .string(a.name), "status": .string(a.liveness.rawValue),
                                 "command": .array(a.command.map { .string($0) }), "cwd": .string(a.cwd),
                                 "started": .string(a.started), "host": .string(a.host),
                                 "metrics": .object(metrics.mapValues { .number($0) })]
        if let pid = a.pid { o["pid"] = .int(pid) }
        return sayJSON(.object(o))
    }
    say("run      \(a.run)  \(a.name)")
    say("status   \(a.liveness.rawValue) (pid \(a.pid.map { "\($0)" } ?? "?") on \(a.host))")
    say("command  \(a.command.joined(separator: " "))")
    say("cwd      \(a.cwd)")
    say("started  \(a.started)")
    for (k, v) in metrics.sorted(by: { $0.key < $1.key }) { say("metric   \(k)=\(shortNumber(v)) (so far)") }
}

func show(_ d: RunDetails, json: Bool) throws {
    let m = d.record.manifest
    func version(_ id: ObjectID?) -> String? { id.flatMap { d.versionNames[$0] } }
    if json {
        var o: [String: JSON] = [
            "run": .string(d.record.run), "id": .string(d.record.id.hex), "manifest": m.json,
            "inputs": .array(m.inputs.map { i in
                var x: [String: JSON] = ["role": .string(i.role), "id": .string(i.id.hex)]
                if let s = i.split { x["split"] = .string(s) }
                if let v = version(i.id) { x["version"] = .string(v) }
                return .object(x)
            }),
            "outputs": .array(m.outputs.map { out in
                var x: [String: JSON] = ["kind": .string(out.kind), "name": .string(out.name), "path": .string(out.path),
                                         "status": .string(out.status.rawValue)]
                if let id = out.id { x["id"] = .string(id.hex) }
                if let v = version(out.id) { x["version"] = .string(v) }
                return .object(x)
            }),
        ]
        if let ms = d.durationMilliseconds { o["duration"] = .number(Double(ms) / 1000) }
        if let e = d.environment {
            o["environment"] = .object(Dictionary(uniqueKeysWithValues: e.summaryFields.map { ($0.0, JSON.string($0.1)) })
                .merging(["packages": .int(Int64(e.packages.count)), "variables": .int(Int64(e.variables.count))]) { x, _ in x })
        }
        if let s = d.system {
            var x: [String: JSON] = ["samples": .int(Int64(s.samples))]
            if let v = s.peakRSS { x["peakRSS"] = .int(v) }
            if let v = s.meanCPU { x["meanCPU"] = .number(v) }
            if let v = s.peakCPU { x["peakCPU"] = .number(v) }
            o["system"] = .object(x)
        }
        if let s = d.diffStat {
            o["diffStat"] = .object(["files": .int(Int64(s.files)), "insertions": .int(Int64(s.insertions)),
                                     "deletions": .int(Int64(s.deletions)), "binaryFiles": .int(Int64(s.binaryFiles))])
        }
        return sayJSON(.object(o))
    }
    say("run      \(d.record.run)  \(m.name)")
    say("id       \(d.record.id.hex)")
    say("command  \(m.command.joined(separator: " "))")
    say("cwd      \(m.cwd)")
    say("started  \(m.started)")
    say("ended    \(m.ended)  (\(humanDuration(d.durationMilliseconds)))")
    var status = m.status.rawValue
    if let e = m.exitCode { status += ", exit \(e)" }
    if let s = m.signal { status += ", signal \(s)" }
    say("status   \(status)")
    say("by       \(m.author)")
    if !m.message.isEmpty { say("message  \(m.message)") }
    for (k, v) in m.params.sorted(by: { $0.key < $1.key }) { say("param    \(k)=\(v)") }
    for (k, v) in m.metrics.sorted(by: { $0.key < $1.key }) { say("metric   \(k)=\(shortNumber(v))") }
    for i in m.inputs {
        say("input    \(i.role): \(version(i.id) ?? i.ref ?? "(no version ref)")\(i.split.map { "#\($0)" } ?? "") (\(i.id.short))")
    }
    for out in m.outputs {
        say("output   \(out.kind) \(out.name) <- \(out.path): \(out.status.rawValue)"
            + (out.id.map { " \(version($0) ?? "(no version ref)") (\($0.short))" } ?? ""))
    }
    if let c = m.code {
        var line = "code     " + (c.commit.map { "commit \($0.prefix(12))" } ?? "no git commit")
        if let b = c.branch { line += " on \(b)" }
        line += c.dirty ? ", dirty" : ", clean"
        if let s = d.diffStat {
            line += " (\(s.files) file\(s.files == 1 ? "" : "s") changed, +\(s.insertions) -\(s.deletions)\(s.binaryFiles > 0 ? ", \(s.binaryFiles) binary" : ""))"
        }
        say(line)
        if let r = c.remote { say("remote   \(r)") }
        if let s = c.snapshot { say("snapshot \(s.short)") }
    }
    if let e = d.environment {
        let fields = e.summaryFields.map { k, v in "\(k) " + (k == "memory" ? Int64(v).map(humanBytes) ?? v : v) }
        say("env      " + (fields + ["\(e.packages.count) packages", "\(e.variables.count) variables"]).joined(separator: "; "))
    }
    if let s = d.system {
        var parts = ["\(s.samples) samples"]
        if let v = s.peakRSS { parts.append("peak RSS \(humanBytes(v))") }
        if let v = s.meanCPU { parts.append("mean CPU \(shortNumber((v * 10).rounded() / 10))%") }
        say("system   " + parts.joined(separator: ", "))
    }
    for (k, v) in m.meta.sorted(by: { $0.key < $1.key }) { say("meta     \(k)=\(v)") }
    say("fingerprint \(m.fingerprint.hex)")
}

// MARK: - logs

struct Logs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print a run's terminal log: each line with its time and stream (out or err).",
        discussion: "The log is streamed, never held whole in memory. --follow on a running run prints new lines as they are written until the run ends, then the rest of its stored log. --json prints one JSON array of {time, stream, text} (streamed too; a line without the time and stream prefix has only text). Exit codes: 0 ok; 2 unknown run or no log recorded; 4 the log blob is missing or damaged; 5 an ambiguous prefix.")
    @Argument(help: ArgumentHelp("The run: id, unique prefix, or name.", valueName: "run")) var runRef: String
    @Flag(name: .shortAndLong, help: "Keep printing while the run is going.") var follow = false
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            let encoder = output.json ? LogJSONWriter() : nil
            let sink: (UnsafeRawBufferPointer) throws -> Void = encoder.map { e in { try e.feed($0) } } ?? writeOut
            switch try repo.locateRun(runRef) {
            case .recorded(let record): try repo.streamLog(record, sink)
            case .active(let a):
                if !follow { try repo.streamActiveLog(a, sink) }
                else if case .abandoned = try repo.followLog(a, sink) {
                    try encoder?.finish()
                    printError("run \(a.run) was abandoned: its process \(a.pid.map { "\($0) " } ?? "")is gone and it has no record")
                    return
                }
            }
            try encoder?.finish()
        }
    }
}

/// Writes log bytes as one JSON array of lines, as they arrive, through a 64 KiB buffer.
final class LogJSONWriter {
    private var splitter = LineSplitter()
    private var first = true
    private var buffer: [UInt8] = []

    func feed(_ bytes: UnsafeRawBufferPointer) throws {
        try splitter.feed(bytes, emit)
    }

    func finish() throws {
        try splitter.finish(emit)
        buffer += Array((first ? "[]\n" : "]\n").utf8)
        try FS.writeAll(1, buffer, path: "stdout")
        buffer = []
    }

    private func emit(_ line: [UInt8]) throws {
        let l = LogLine(parsing: line)
        var o: [String: JSON] = ["text": .string(l.text)]
        if let t = l.time { o["time"] = .string(t) }
        if let s = l.stream { o["stream"] = .string(s) }
        buffer.append(UInt8(ascii: first ? "[" : ","))
        buffer += JSON.object(o).canonicalBytes()
        first = false
        if buffer.count >= 1 << 16 {
            try FS.writeAll(1, buffer, path: "stdout")
            buffer.removeAll(keepingCapacity: true)
        }
    }
}

// MARK: - metrics

struct Metrics: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Show a run's metric series: a sparkline with min, max and last per metric, then a table by step.",
        discussion: "On a run that is still going, the points mlv run has taken from its metrics file so far (brought up to date about once a second). Exit codes: 0 ok; 2 unknown run or metric; 4 the series blob is missing or damaged; 5 an ambiguous prefix.")
    @Argument(help: ArgumentHelp("The run: id, unique prefix, or name.", valueName: "run")) var runRef: String
    @Argument(help: "Only these metrics (default: all).") var names: [String] = []
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: TableOutputOptions

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            let run: String, series: [MetricHistory]
            var status: String?
            switch try repo.locateRun(runRef) {
            case .recorded(let record):
                run = record.run
                series = try repo.metricSeries(record, names: names)
            case .active(let a):
                run = a.run
                status = a.liveness.rawValue
                series = try repo.metricSeries(active: a, names: names)
            }
            let rows = metricTable(series)
            if output.json {
                var top: [String: JSON] = ["run": .string(run)]
                if let status { top["status"] = .string(status) }
                return sayJSON(.object(top.merging(["metrics": .array(series.map { s in
                    var o: [String: JSON] = ["name": .string(s.name), "points": .array(s.points.map { p in
                        var x: [String: JSON] = ["time": .string(p.time), "value": .number(p.value)]
                        if let step = p.step { x["step"] = .int(step) }
                        return .object(x)
                    })]
                    if let v = s.min { o["min"] = .number(v) }
                    if let v = s.max { o["max"] = .number(v) }
                    if let v = s.last { o["last"] = .number(v) }
                    return .object(o)
                })]) { x, _ in x }))
            }
            if output.csv {
                say((["step", "time"] + series.map(\.name)).map(csvField).joined(separator: ","))
                for r in rows {
                    say(([r.step.map { "\($0)" } ?? "", r.time] + r.values.map { $0.map { "\($0)" } ?? "" }).map(csvField).joined(separator: ","))
                }
                return
            }
            if series.isEmpty { return say(status.map { "run \(run) is \($0) and has no metrics yet" } ?? "run \(run) recorded no metrics") }
            say(table(series.map { s in
                [s.name, sparkline(s.points.map(\.value)), "min \(s.min.map(shortNumber) ?? "-")",
                 "max \(s.max.map(shortNumber) ?? "-")", "last \(s.last.map(shortNumber) ?? "-")", "(\(s.points.count) points)"]
            }))
            guard !rows.isEmpty else { return }
            say("")
            say(table([["STEP", "TIME"] + series.map(\.name)] + rows.map { r in
                [r.step.map { "\($0)" } ?? "-", r.time] + r.values.map { $0.map(shortNumber) ?? "" }
            }))
        }
    }
}

// MARK: - diff run

struct DiffRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "What differs between two runs: params, metrics, inputs, environment, code.",
        discussion: "Exit codes: 0 ok; 2 unknown run; 4 a damaged run, environment or code snapshot; 5 an ambiguous prefix.")
    @Argument(help: "The first run.") var from: String
    @Argument(help: "The second run.") var to: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run { try showRunDiff(try store.open().diffRuns(from, to), json: output.json) }
    }
}

func fieldChangesJSON(_ changes: [FieldChange]) -> JSON {
    .array(changes.map { c in
        var o: [String: JSON] = ["key": .string(c.key), "change": .string(c.kind)]
        if let v = c.old { o["old"] = .string(v) }
        if let v = c.new { o["new"] = .string(v) }
        return .object(o)
    })
}

func metricChangesJSON(_ changes: [MetricChange]) -> JSON {
    .array(changes.map { c in
        var o: [String: JSON] = ["name": .string(c.name)]
        if let v = c.old { o["old"] = .number(v) }
        if let v = c.new { o["new"] = .number(v) }
        if let v = c.delta { o["delta"] = .number(v) }
        return .object(o)
    })
}

func inputsJSON(_ inputs: [InputComparison]) -> JSON {
    .array(inputs.map { i in
        .object(["role": .string(i.role), "old": .array(i.old.map { .string($0) }), "new": .array(i.new.map { .string($0) }),
                 "same": .bool(i.same)])
    })
}

func environmentJSON(_ e: EnvironmentDiff) -> JSON {
    .object(["oldRecorded": .bool(e.oldRecorded), "newRecorded": .bool(e.newRecorded), "fields": fieldChangesJSON(e.fields),
             "variables": fieldChangesJSON(e.variables), "packages": fieldChangesJSON(e.packages)])
}

func renderFieldChanges(_ changes: [FieldChange], label: String = "") {
    for c in changes {
        switch c.kind {
        case "added": say("  + \(label)\(c.key): \(c.new!)")
        case "removed": say("  - \(label)\(c.key): \(c.old!)")
        default: say("  ~ \(label)\(c.key): \(c.old!) -> \(c.new!)")
        }
    }
}

func renderMetricChanges(_ changes: [MetricChange]) {
    for c in changes {
        let delta = c.delta.map { $0 == 0 ? " (same)" : " (\($0 > 0 ? "+" : "")\(shortNumber($0)))" } ?? ""
        say("    \(c.name): \(c.old.map(shortNumber) ?? "-") -> \(c.new.map(shortNumber) ?? "-")\(delta)")
    }
}

func renderInputs(_ inputs: [InputComparison]) {
    for i in inputs {
        let a = i.old.isEmpty ? "-" : i.old.joined(separator: ", "), b = i.new.isEmpty ? "-" : i.new.joined(separator: ", ")
        say(i.same ? "    \(i.role): \(a) (same)" : "  ~ \(i.role): \(a) -> \(b)")
    }
}

func renderEnvironment(_ e: EnvironmentDiff, _ oldName: String, _ newName: String) {
    if !e.oldRecorded || !e.newRecorded {
        let missing = [e.oldRecorded ? nil : oldName, e.newRecorded ? nil : newName].compactMap { $0 }
        say("  (no environment recorded for \(missing.joined(separator: " and ")))")
    }
    if e.isEmpty && e.oldRecorded { say("    same") }
    renderFieldChanges(e.fields)
    renderFieldChanges(e.variables, label: "variable ")
    renderFieldChanges(e.packages, label: "package ")
}

func showRunDiff(_ d: RunDiff, json: Bool) throws {
    let code = d.code
    if json {
        var c: [String: JSON] = ["files": changesJSON(code.files), "same": .bool(code.isSame)]
        if let v = code.oldCommit { c["oldCommit"] = .string(v) }
        if let v = code.newCommit { c["newCommit"] = .string(v) }
        if let v = code.oldDirty { c["oldDirty"] = .bool(v) }
        if let v = code.newDirty { c["newDirty"] = .bool(v) }
        if let v = code.oldSnapshot { c["oldSnapshot"] = .string(v.hex) }
        if let v = code.newSnapshot { c["newSnapshot"] = .string(v.hex) }
        return sayJSON(.object(["from": .string(d.old.run), "to": .string(d.new.run), "params": fieldChangesJSON(d.params),
                                "metrics": metricChangesJSON(d.metrics), "inputs": inputsJSON(d.inputs),
                                "environment": environmentJSON(d.environment), "code": .object(c)]))
    }
    let a = "\(d.old.run.prefix(8)) (\(d.old.manifest.name))", b = "\(d.new.run.prefix(8)) (\(d.new.manifest.name))"
    say("run \(a) -> \(b)")
    say("params")
    if d.params.isEmpty { say("    same") }
    renderFieldChanges(d.params)
    say("metrics")
    renderMetricChanges(d.metrics)
    say("inputs")
    renderInputs(d.inputs)
    say("environment")
    renderEnvironment(d.environment, a, b)
    say("code")
    func state(_ b: Bool?) -> String { b.map { $0 ? "dirty" : "clean" } ?? "-" }
    if d.old.manifest.code == nil && d.new.manifest.code == nil { return say("    no code recorded for either run") }
    say("    commit \(code.oldCommit.map { String($0.prefix(12)) } ?? "-") -> \(code.newCommit.map { String($0.prefix(12)) } ?? "-")")
    say("    work tree \(state(code.oldDirty)) -> \(state(code.newDirty))")
    say("    snapshot \(code.oldSnapshot?.short ?? "-") -> \(code.newSnapshot?.short ?? "-")" + (code.oldSnapshot == code.newSnapshot ? " (same)" : ""))
    renderChanges(code.files)
}

// MARK: - compare

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Put two model versions side by side: metrics, params, training and eval data, environment, stages.",
        discussion: """
            A model's run is the one its manifest names. The eval set is the run's inputs with role \
            eval; two eval sets are the same test set when their content (each split's tree) is the \
            same, even under different dataset versions. Different test sets, or a missing one, are \
            flagged with a WARNING line. Exit codes: 0 ok; 2 unknown model or version; 4 a damaged \
            manifest, run or environment; 5 a ref that is not a model.
            """)
    @Argument(help: "The first model version, e.g. digits@production.") var a: String
    @Argument(help: "The second model version, e.g. digits@v4.") var b: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func sideJSON(_ s: ComparedModel) -> JSON {
        var o: [String: JSON] = ["ref": s.ref.json, "stages": .array(s.stages.map { .string($0) }),
                                 "aliases": .array(s.aliases.map { .string($0) }), "eval": .array(s.evalSet.map { .string($0) })]
        if let r = s.run { o["run"] = .string(r.run) }
        if let n = s.runNote { o["runNote"] = .string(n) }
        return .object(o)
    }

    func run() throws {
        try MLVCommands.run {
            let c = try store.open().compareModels(a, b)
            if output.json {
                return sayJSON(.object(["old": sideJSON(c.old), "new": sideJSON(c.new), "metrics": metricChangesJSON(c.metrics),
                                        "params": fieldChangesJSON(c.params), "training": inputsJSON(c.training),
                                        "eval": .object(["verdict": .string(c.eval.rawValue), "note": .string(c.evalNote)]),
                                        "environment": environmentJSON(c.environment)]))
            }
            let x = c.old.ref.display, y = c.new.ref.display
            say("compare \(x) -> \(y)")
            for s in [c.old, c.new] {
                var holds = s.stages.map { "stage \($0)" } + s.aliases.map { "alias \($0)" }
                if holds.isEmpty { holds = ["no stage"] }
                say("  \(s.ref.display): \(s.run.map { "run \($0.run.prefix(8)) (\($0.manifest.name))" } ?? s.runNote ?? ""); \(holds.joined(separator: ", "))")
            }
            if c.eval != .same && c.eval != .sameContent { say("WARNING: \(c.evalNote)") }
            say("eval (\(c.eval.rawValue))")
            for s in [c.old, c.new] { say("    \(s.ref.display): \(s.evalSet.isEmpty ? "none recorded" : s.evalSet.joined(separator: ", "))") }
            if c.eval == .same || c.eval == .sameContent { say("    \(c.evalNote)") }
            say("metrics")
            if c.metrics.isEmpty { say("    none recorded") }
            renderMetricChanges(c.metrics)
            say("params")
            if c.old.run == nil || c.new.run == nil { say("    unknown: not both have a run") }
            else if c.params.isEmpty { say("    same") }
            renderFieldChanges(c.params)
            say("training data")
            if c.training.isEmpty { say("    none recorded") }
            renderInputs(c.training)
            say("environment")
            renderEnvironment(c.environment, x, y)
        }
    }
}
