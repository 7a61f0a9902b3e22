import ArgumentParser
import MLVBasics
import MLVKit
import MLVModel

/// What `mlv run` and `mlv rerun` share: the options that describe a run.
struct RunOptions: ParsableArguments {
    @Option(name: .customLong("metrics-interval"), help: ArgumentHelp("Seconds between system metric samples (CPU, RSS, disk, network, GPU).", valueName: "SECONDS"))
    var metricsInterval: Double = 5
    @Flag(name: .customLong("skip-existing"), help: "Do not run when a recorded run has the same code snapshot, inputs, params and command; exit 0.")
    var skipExisting = false
    @Flag(name: .customLong("no-pty"), help: "Give the command pipes even where mlv's stdout or stderr is a terminal (by default it gets a pseudo-terminal there).")
    var noPty = false

    /// Sets what these options say on `request`.
    func apply(to request: inout RunRequest) {
        request.metricsInterval = metricsInterval
        request.terminal = !noPty
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command and record it as a run: code, inputs, params, terminal log, environment, metrics, outputs.",
        discussion: """
            The command's stdout and stderr pass through unchanged while a timestamped log is \
            stored. Where mlv's stdout or stderr is a terminal the command gets a pseudo-terminal \
            for it (so it keeps colours, progress bars and line buffering; one per stream, raw, \
            resized with mlv's); --no-pty gives it pipes. It gets MLV_RUN_ID and MLV_METRICS_FILE: JSON lines appended to that file \
            ({"step": 3, "loss": 0.4}) or 'mlv log metric' calls become metric series. Ctrl-C and \
            SIGTERM are forwarded to it. Inside a git work tree the commit, branch, remote, the \
            diff against HEAD and a snapshot of tracked and untracked-not-ignored files are \
            recorded; outside git only the --code files. Each --output becomes a new dataset or \
            model version whose lineage names the run (not when the run failed). mlv says so on \
            stderr when a run with the same code, inputs, params and command exists. \
            Exit codes: the command's own status (128 + N when signal N ended it; 127 when it \
            was not found; 1 when it succeeded but an --output path was never written); 2 an \
            input ref not found; 5 a bad --output or name; 64 usage (a --param given twice).
            """)

    @Option(name: .customLong("name"), help: "The run's name (default: the script's or program's base name).") var name: String?
    @Option(name: .customLong("param"), help: ArgumentHelp("A parameter, recorded exactly as given. Repeatable.", valueName: "KEY=VALUE"))
    var params: [String] = []
    @Option(name: .customLong("input"), help: ArgumentHelp("A version the run reads, as [ROLE=]REF[#SPLIT] (roles such as train, eval, checkpoint). Repeatable.", valueName: "REF"))
    var inputs: [String] = []
    @Option(name: .customLong("output"), help: ArgumentHelp("A path the command writes, to become a new version: dataset:NAME=PATH or model:NAME=PATH. Repeatable.", valueName: "KIND:NAME=PATH"))
    var outputs: [String] = []
    @Option(name: .customLong("code"), help: ArgumentHelp("A source file to snapshot as the run's code (outside git; inside git it is added to the snapshot). Repeatable.", valueName: "PATH"))
    var code: [String] = []
    @OptionGroup var runOptions: RunOptions
    @Option(name: .shortAndLong, help: "What this run is for.") var message = ""
    @Option(name: .customLong("meta"), help: ArgumentHelp("A key=value note. Repeatable.", valueName: "KEY=VALUE"))
    var meta: [String] = []
    @OptionGroup var store: StoreOptions
    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command, after '--'.", valueName: "CMD"))
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("no command given: mlv run [OPTIONS] -- CMD ARGS...") }
        _ = try keyValuePairs(params, "--param")
        _ = try keyValuePairs(meta, "--meta")
    }

    func run() throws {
        var status: Int32 = 0
        try MLVCommands.run {
            let repo = try store.open()
            var request = RunRequest(name: name, command: command)
            request.params = try keyValuePairs(params, "--param")
            request.meta = try keyValuePairs(meta, "--meta")
            request.inputs = inputs
            request.outputs = outputs
            request.code = code
            runOptions.apply(to: &request)
            request.message = message
            let launcher = try RunLauncher(repository: repo, request: request)
            status = try launchAndReport(launcher, skipExisting: runOptions.skipExisting)
        }
        if status != 0 { throw ExitCode(status) }
    }
}

/// Says what earlier identical runs there are, runs (unless skipped), and reports.
/// - Returns: the status mlv exits with.
func launchAndReport(_ launcher: RunLauncher, skipExisting: Bool) throws -> Int32 {
    // The newest three, and how many in all: a command rerun often would otherwise fill
    // the terminal before it starts.
    if launcher.previousCount > launcher.previous.count {
        printError("\(launcher.previousCount) identical runs exist (same code, inputs, params and command); the newest \(launcher.previous.count):")
    }
    for p in launcher.previous {
        let m = p.manifest
        let metrics = m.metrics.sorted { $0.key < $1.key }.prefix(4).map { "\($0.key)=\(formatNumber($0.value))" }.joined(separator: " ")
        printError("an identical run exists (same code, inputs, params and command): \(p.run) \(m.name) \(describeStatus(m))"
                   + (metrics.isEmpty ? "" : ", \(metrics)") + ", started \(m.started)")
    }
    if skipExisting, !launcher.previous.isEmpty {
        printError("skipped (--skip-existing)")
        return 0
    }
    let result = try launcher.run()
    let m = result.record.manifest
    if let failure = result.startFailure { printError("error: \(failure)") }
    for p in result.metricProblems { printError("warning: metrics line skipped: \(p)") }
    for o in result.missingOutputs { printError("error: --output \(o.text): the command never wrote '\(o.path)'") }
    for o in m.outputs where o.status == .failed {
        printError("output \(o.kind):\(o.name) stored as \(o.id!.short) but not versioned: the run \(m.status.rawValue)")
    }
    printError("run \(m.run) (\(m.name)) \(describeStatus(m))")
    return result.exitStatus
}

/// `succeeded`, `failed (exit 3)`, `killed (SIGTERM)`, `interrupted (SIGINT)`.
func describeStatus(_ m: RunManifest) -> String {
    if let s = m.signal { return "\(m.status.rawValue) (\(s))" }
    if m.status != .succeeded, let c = m.exitCode { return "\(m.status.rawValue) (exit \(c))" }
    return m.status.rawValue
}

func formatNumber(_ v: Double) -> String {
    v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
}

struct Rerun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rerun",
        abstract: "Run a recorded run again: the same code snapshot, inputs, params, command and outputs, in a fresh work directory.",
        discussion: """
            The run's code snapshot is checked out into --workdir (or a new temporary directory) \
            and the command runs there, in the same place inside the snapshot, recorded as a new \
            run with meta rerunOf=<the run>. --dry-run prints the plan and runs nothing. \
            Exit codes: as for 'mlv run'; 2 no such run; 5 the run has no code snapshot or \
            --workdir is not empty.
            """)

    @Argument(help: ArgumentHelp("A run: its id, a unique prefix (4+ hex digits), or its name (the newest run with it).", valueName: "RUN")) var target: String
    @Option(name: .customLong("workdir"), help: ArgumentHelp("Where to check the code out (must be empty or missing).", valueName: "DIR"))
    var workdir: String?
    @Flag(name: .customLong("dry-run"), help: "Print what would be done; run nothing.") var dryRun = false
    @OptionGroup var runOptions: RunOptions
    @OptionGroup var store: StoreOptions

    func run() throws {
        var status: Int32 = 0
        try MLVCommands.run {
            let repo = try store.open()
            var plan = try repo.planRerun(target, workdir: workdir)
            runOptions.apply(to: &plan.request)
            if dryRun {
                say("rerun of \(plan.original.run) (\(plan.original.manifest.name))")
                say("code:    \(plan.snapshot.hex) -> \(plan.workdir ?? "a new temporary directory")")
                say("cwd:     \(plan.cwdInSnapshot)")
                say("command: \(plan.request.command.map(shellQuote).joined(separator: " "))")
                for (k, v) in plan.request.params.sorted(by: { $0.key < $1.key }) { say("param:   \(k)=\(v)") }
                for i in plan.request.inputs { say("input:   \(i)") }
                for o in plan.request.outputs { say("output:  \(o)") }
                return
            }
            let (launcher, dir) = try repo.prepareRerun(plan)
            printError("rerun of \(plan.original.run) in \(dir)")
            status = try launchAndReport(launcher, skipExisting: runOptions.skipExisting)
        }
        if status != 0 { throw ExitCode(status) }
    }
}

/// Quotes a word for a POSIX shell when it needs it.
func shellQuote(_ word: String) -> String {
    let safe = word.utf8.allSatisfy { b in
        (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || "-_./=:,+@%".utf8.contains(b)
    }
    if safe && !word.isEmpty { return word }
    return "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
}

struct LogRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Record a run that happened elsewhere: params, metrics, inputs, outputs, log, status.",
        discussion: """
            --metrics takes JSON lines ({"step": 3, "loss": 0.4, "acc": 0.9}: every number but \
            step and time is a metric). Everything is checked before anything is stored: a \
            missing file, a metrics line that is not a JSON object of numbers, or a bad time \
            records nothing. Prints the run id. \
            Exit codes: 0 ok; 2 a file or input ref not found; 5 a bad metrics line, time, \
            name or --output; 64 usage (a --param given twice).
            """)

    @Option(name: .customLong("name"), help: "The run's name.") var name: String
    @Option(name: .customLong("param"), help: ArgumentHelp("A parameter. Repeatable.", valueName: "KEY=VALUE")) var params: [String] = []
    @Option(name: .customLong("metrics"), help: ArgumentHelp("A JSON-lines metrics file.", valueName: "FILE")) var metrics: String?
    @Option(name: .customLong("input"), help: ArgumentHelp("A version the run read, as [ROLE=]REF[#SPLIT]. Repeatable.", valueName: "REF"))
    var inputs: [String] = []
    @Option(name: .customLong("output"), help: ArgumentHelp("A file or directory it wrote: dataset:NAME=PATH or model:NAME=PATH. Repeatable.", valueName: "KIND:NAME=PATH"))
    var outputs: [String] = []
    @Option(name: .customLong("log"), help: ArgumentHelp("Its terminal output, as a text file.", valueName: "FILE")) var log: String?
    @Option(name: .customLong("status"), help: ArgumentHelp("How it ended: succeeded, failed, interrupted or killed (default succeeded).", valueName: "STATUS"))
    var status = "succeeded"
    @Option(name: .customLong("exit-code"), help: "Its exit status.") var exitCode: Int64?
    @Option(name: .customLong("started"), help: ArgumentHelp("When it started (RFC 3339 UTC, e.g. 2026-11-27T01:00:00Z; default now).", valueName: "TIME"))
    var started: String?
    @Option(name: .customLong("ended"), help: ArgumentHelp("When it ended (default: --started, else now).", valueName: "TIME"))
    var ended: String?
    @Option(name: .customLong("code"), help: ArgumentHelp("A source file it ran, snapshotted. Repeatable.", valueName: "PATH")) var code: [String] = []
    @Option(name: .shortAndLong, help: "What this run was for.") var message = ""
    @Option(name: .customLong("meta"), help: ArgumentHelp("A key=value note. Repeatable.", valueName: "KEY=VALUE")) var meta: [String] = []
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption
    @Argument(parsing: .postTerminator, help: ArgumentHelp("The command it ran, after '--' (optional).", valueName: "CMD"))
    var command: [String] = []

    func validate() throws {
        _ = try keyValuePairs(params, "--param")
        _ = try keyValuePairs(meta, "--meta")
        if RunStatus(rawValue: status) == nil {
            throw ValidationError("--status '\(status)': expected \(RunStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            var request = RunImportRequest(name: name)
            request.params = try keyValuePairs(params, "--param")
            request.meta = try keyValuePairs(meta, "--meta")
            request.inputs = inputs
            request.outputs = outputs
            request.metricsFile = metrics
            request.logFile = log
            request.status = RunStatus(rawValue: status)!
            request.exitCode = exitCode
            request.started = started
            request.ended = ended
            request.code = code
            request.command = command
            request.message = message
            let record = try repo.importRun(request)
            if output.json {
                sayJSON(.object(["run": .string(record.run), "id": .string(record.id.hex), "name": .string(name),
                                 "outputs": .array(record.manifest.outputs.map { o in
                                     .object(["kind": .string(o.kind), "name": .string(o.name), "status": .string(o.status.rawValue),
                                              "id": o.id.map { .string($0.hex) } ?? .null])
                                 })]))
            } else {
                say("run \(record.run) (\(name)) \(describeStatus(record.manifest))")
                for o in record.manifest.outputs { say("output \(o.kind):\(o.name) \(o.status.rawValue) \(o.id?.short ?? "")") }
            }
        }
    }
}

struct LogMetric: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metric",
        abstract: "Inside 'mlv run': append metric values to the run's series.",
        discussion: """
            Appends one JSON line to $MLV_METRICS_FILE, e.g. 'mlv log metric loss=0.31 acc=0.92 \
            --step 40'. Exit codes: 0 ok; 5 not inside 'mlv run' (MLV_RUN_ID or MLV_METRICS_FILE \
            unset) or a value that is not a number.
            """)

    @Argument(help: ArgumentHelp("Metric values.", valueName: "NAME=VALUE")) var values: [String]
    @Option(name: .customLong("step"), help: "The step (an integer) these values belong to.") var step: Int64?

    func run() throws {
        try MLVCommands.run {
            let metrics = try MetricLines.parseAssignments(values)
            _ = try MetricLines.appendToCurrentRun(metrics, step: step)
        }
    }
}
