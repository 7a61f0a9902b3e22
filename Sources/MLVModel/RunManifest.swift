import MLVBasics

/// How a run ended.
public enum RunStatus: String, Sendable, CaseIterable {
    /// The command exited with status 0.
    case succeeded
    /// The command exited non-zero, or could not be started (exit 127).
    case failed
    /// The user interrupted it (Ctrl-C was forwarded to the command).
    case interrupted
    /// A signal other than the user's interrupt ended it.
    case killed
}

/// One output of a run: the file or directory a command wrote, versioned as a dataset or
/// model whose manifest names the run.
public struct RunOutput: Sendable, Equatable {
    /// What the output became.
    public enum Status: String, Sendable {
        /// Stored as a new version (`id` is its manifest).
        case stored
        /// The command never wrote the path; nothing stored.
        case missing
        /// The run failed: the output's manifest is stored (`id`) but no version points at it.
        case failed
    }

    /// `dataset` or `model`.
    public var kind: String
    public var name: String
    /// The path given on the command line, relative to the run's working directory.
    public var path: String
    /// The output's manifest, unless it is missing.
    public var id: ObjectID?
    public var status: Status

    public init(kind: String, name: String, path: String, id: ObjectID?, status: Status) {
        self.kind = kind; self.name = name; self.path = path; self.id = id; self.status = status
    }

    var json: JSON {
        var o: [String: JSON] = ["kind": .string(kind), "name": .string(name), "path": .string(path),
                                 "status": .string(status.rawValue)]
        if let id { o["id"] = .string(id.hex) }
        return .object(o)
    }

    init(json: JSON) throws {
        let f = FieldReader(json: json, document: "run output")
        let statusText = try f.string("status")
        guard let status = Status(rawValue: statusText) else { throw ModelError("run output status '\(statusText)' is unknown") }
        let id = try json["id"].map { _ in try f.id("id") }
        if status != .missing, id == nil { throw ModelError("run output with status \(statusText) has no id") }
        self.init(kind: try f.string("kind"), name: try f.string("name"), path: try f.string("path"), id: id, status: status)
    }
}

/// The code a run used: where it came from in git (when it ran inside a work tree) and a
/// snapshot of the files (a `mlv.code/1` manifest).
public struct RunCode: Sendable, Equatable {
    public var commit: String?
    public var branch: String?
    public var remote: String?
    /// Whether the work tree differed from `commit` (staged, unstaged or untracked changes).
    public var dirty: Bool
    /// A blob holding `git diff HEAD --binary` (staged and unstaged), when dirty.
    public var diff: ObjectID?
    /// The code snapshot manifest (tracked and untracked-not-ignored files, or `--code` paths).
    public var snapshot: ObjectID?

    public init(commit: String? = nil, branch: String? = nil, remote: String? = nil, dirty: Bool = false,
                diff: ObjectID? = nil, snapshot: ObjectID? = nil) {
        self.commit = commit; self.branch = branch; self.remote = remote; self.dirty = dirty
        self.diff = diff; self.snapshot = snapshot
    }

    var json: JSON {
        var o: [String: JSON] = ["dirty": .bool(dirty)]
        if let commit { o["commit"] = .string(commit) }
        if let branch { o["branch"] = .string(branch) }
        if let remote { o["remote"] = .string(remote) }
        if let diff { o["diff"] = .string(diff.hex) }
        if let snapshot { o["snapshot"] = .string(snapshot.hex) }
        return .object(o)
    }

    init(json: JSON) throws {
        let f = FieldReader(json: json, document: "run code")
        guard let dirty = json["dirty"]?.bool else { throw ModelError("run code field 'dirty' is missing or not a boolean") }
        self.init(commit: try f.optionalString("commit"), branch: try f.optionalString("branch"),
                  remote: try f.optionalString("remote"), dirty: dirty,
                  diff: try json["diff"].map { _ in try f.id("diff") },
                  snapshot: try json["snapshot"].map { _ in try f.id("snapshot") })
    }
}

/// One run (`mlv.run/1`): what was executed, on what, with which code, parameters and
/// environment, how it ended, and what it produced. Kept under `refs/runs/<run id>`.
///
/// Large or shared parts are blobs the manifest points at, so they deduplicate across
/// runs: the timestamped terminal log, the metric series (JSON lines), the system
/// metric samples (JSON lines), the environment (canonical JSON) and the git diff.
public struct RunManifest: Sendable, Equatable {
    public static let schema = "mlv.run/1"

    /// The run id: 16 lowercase hex digits, chosen at random when the run starts.
    public var run: String
    public var name: String
    public var command: [String]
    /// The working directory, relative to the repository when inside it.
    public var cwd: String
    /// RFC 3339 UTC.
    public var started: String
    public var ended: String
    public var status: RunStatus
    /// The command's exit status, when it exited (not when a signal ended it).
    public var exitCode: Int64?
    /// The signal that ended it (`SIGINT`, `SIGKILL`, ...).
    public var signal: String?
    /// Parameters exactly as given (`lr` -> `0.01`); compared as numbers when both sides parse as numbers.
    public var params: [String: String]
    /// The last value of each metric.
    public var metrics: [String: Double]
    /// Every metric point, as JSON lines `{"name":..,"step":..,"time":..,"value":..}`.
    public var series: ObjectID?
    public var inputs: [Input]
    public var outputs: [RunOutput]
    public var code: RunCode?
    /// `mlv.environment/1`: OS, CPU, memory, GPUs, Python, packages, redacted variables.
    public var environment: ObjectID?
    /// The terminal log: one line per output line, prefixed with its time and stream.
    public var log: ObjectID?
    /// System metric samples (CPU, RSS, disk and network bytes, GPU) as JSON lines.
    public var system: ObjectID?
    public var author: String
    public var message: String
    public var meta: [String: String]

    public init(run: String, name: String, command: [String], cwd: String, started: String, ended: String,
                status: RunStatus, exitCode: Int64? = nil, signal: String? = nil, params: [String: String] = [:],
                metrics: [String: Double] = [:], series: ObjectID? = nil, inputs: [Input] = [], outputs: [RunOutput] = [],
                code: RunCode? = nil, environment: ObjectID? = nil, log: ObjectID? = nil, system: ObjectID? = nil,
                author: String, message: String = "", meta: [String: String] = [:]) {
        self.run = run; self.name = name; self.command = command; self.cwd = cwd; self.started = started
        self.ended = ended; self.status = status; self.exitCode = exitCode; self.signal = signal
        self.params = params; self.metrics = metrics; self.series = series; self.inputs = inputs
        self.outputs = outputs; self.code = code; self.environment = environment; self.log = log
        self.system = system; self.author = author; self.message = message; self.meta = meta
    }

    /// Whether `text` is a well-formed run id.
    public static func isRunID(_ text: String) -> Bool {
        text.utf8.count == 16 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }

    /// "Have we tried this already?": the hash of the code snapshot, the inputs (role, id,
    /// split) and the params. Two runs with the same fingerprint did the same thing.
    public var fingerprint: ObjectID {
        Self.fingerprint(code: code?.snapshot, inputs: inputs, params: params)
    }

    /// The fingerprint of a run that has not happened yet.
    public static func fingerprint(code: ObjectID?, inputs: [Input], params: [String: String]) -> ObjectID {
        let inputList = inputs.map { i -> JSON in
            var o: [String: JSON] = ["role": .string(i.role), "id": .string(i.id.hex)]
            if let s = i.split { o["split"] = .string(s) }
            return .object(o)
        }.sorted { $0.canonicalBytes().lexicographicallyPrecedes($1.canonicalBytes()) }
        let json = JSON.object([
            "code": code.map { .string($0.hex) } ?? .null,
            "inputs": .array(inputList),
            "params": .object(params.mapValues { .string($0) }),
        ])
        return SHA256.hash(json.canonicalBytes())
    }

    public var json: JSON {
        var o: [String: JSON] = [
            "schema": .string(Self.schema),
            "run": .string(run),
            "name": .string(name),
            "command": .array(command.map { .string($0) }),
            "cwd": .string(cwd),
            "started": .string(started),
            "ended": .string(ended),
            "status": .string(status.rawValue),
            "params": .object(params.mapValues { .string($0) }),
            "metrics": .object(metrics.mapValues { JSON.number($0) }),
            "inputs": .array(inputs.map(\.json)),
            "outputs": .array(outputs.map(\.json)),
            "fingerprint": .string(fingerprint.hex),
            "author": .string(author),
            "message": .string(message),
            "meta": .object(meta.mapValues { .string($0) }),
        ]
        if let exitCode { o["exitCode"] = .int(exitCode) }
        if let signal { o["signal"] = .string(signal) }
        if let series { o["series"] = .string(series.hex) }
        if let code { o["code"] = code.json }
        if let environment { o["environment"] = .string(environment.hex) }
        if let log { o["log"] = .string(log.hex) }
        if let system { o["system"] = .string(system.hex) }
        return .object(o)
    }

    public func canonicalBytes() -> [UInt8] { json.canonicalBytes() }

    /// Decodes a run manifest, checking every field's type.
    /// - Throws: `ModelError` naming the bad field.
    public init(json: JSON) throws {
        guard json["schema"]?.string == Self.schema else {
            throw ModelError("not a run manifest (schema \(json["schema"]?.string ?? "missing"))")
        }
        let f = FieldReader(json: json, document: "run manifest")
        run = try f.string("run")
        guard Self.isRunID(run) else { throw ModelError("run manifest field 'run' is not a run id") }
        name = try f.string("name")
        guard let command = json["command"]?.array?.compactMap(\.string), command.count == json["command"]?.array?.count else {
            throw ModelError("run manifest field 'command' is missing or not a list of strings")
        }
        self.command = command
        cwd = try f.string("cwd")
        started = try f.string("started")
        ended = try f.string("ended")
        let statusText = try f.string("status")
        guard let status = RunStatus(rawValue: statusText) else { throw ModelError("run status '\(statusText)' is unknown") }
        self.status = status
        if let e = json["exitCode"] {
            guard let code = e.int else { throw ModelError("run manifest field 'exitCode' is not an integer") }
            exitCode = code
        } else { exitCode = nil }
        signal = try f.optionalString("signal")
        params = try f.stringMap("params")
        guard let metricObject = json["metrics"]?.object else { throw ModelError("run manifest has no metrics") }
        metrics = try metricObject.mapValues { v in
            if case .null = v { return .nan }
            guard let d = v.double else { throw ModelError("run metric values must be numbers") }
            return d
        }
        series = try json["series"].map { _ in try f.id("series") }
        inputs = try f.inputs()
        guard let outputList = json["outputs"]?.array else { throw ModelError("run manifest has no outputs list") }
        outputs = try outputList.map(RunOutput.init(json:))
        code = try json["code"].map(RunCode.init(json:))
        environment = try json["environment"].map { _ in try f.id("environment") }
        log = try json["log"].map { _ in try f.id("log") }
        system = try json["system"].map { _ in try f.id("system") }
        author = try f.string("author")
        message = try f.string("message")
        meta = try f.meta()
        if let stored = json["fingerprint"]?.string, stored != fingerprint.hex {
            throw ModelError("run manifest fingerprint does not match its code, inputs and params")
        }
    }

    /// Every object this run points at (for gc reachability and remotes): blobs first,
    /// then manifests.
    public var referencedBlobs: [ObjectID] { [series, environment, log, system, code?.diff].compactMap { $0 } }
    public var referencedManifests: [ObjectID] {
        inputs.map(\.id) + outputs.compactMap(\.id) + [code?.snapshot].compactMap { $0 }
    }
}
