import MLVBasics
import MLVModel
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// What `mlv log run` records: a run that happened elsewhere.
public struct RunImportRequest: Sendable {
    public var name: String
    public var params: [String: String] = [:]
    /// `[ROLE=]REF[#SPLIT]`.
    public var inputs: [String] = []
    /// `KIND:NAME=PATH`; every path must exist.
    public var outputs: [String] = []
    /// A JSON-lines metrics file (`{"step": 3, "loss": 0.4}` per line).
    public var metricsFile: String?
    /// A plain terminal log; each line is stored with the start time, as `out`.
    public var logFile: String?
    public var status: RunStatus = .succeeded
    public var exitCode: Int64?
    /// RFC 3339 UTC (`2026-11-27T01:00:00Z`) or a date; default now.
    public var started: String?
    public var ended: String?
    public var command: [String] = []
    /// Files snapshotted as the run's code.
    public var code: [String] = []
    public var message: String = ""
    public var meta: [String: String] = [:]
    public var directory: String = FS.currentDirectory()

    public init(name: String) { self.name = name }
}

extension Repository {
    /// Records a run that happened elsewhere. Everything is checked first (inputs,
    /// outputs, times, every metrics line); nothing is recorded when anything is wrong.
    /// - Throws: `MLVError.pathNotFound` for a missing file; `.invalidArgument` naming
    ///   the metrics file and line that is not a metric line, or a bad time; ref errors.
    public func importRun(_ request: RunImportRequest) throws -> RunRecord {
        if request.name.isEmpty || request.name.utf8.contains(where: { $0 < 32 }) {
            throw MLVError.invalidName(request.name, reason: "a run name needs at least one character and no control characters")
        }
        let inputs = try parseRunInputs(request.inputs)
        let outputs = try request.outputs.map(RunOutputSpec.init(parsing:))
        for o in outputs where !FS.exists(FS.absolute(o.path, relativeTo: request.directory)) {
            throw MLVError.pathNotFound(o.path)
        }
        func time(_ text: String?, _ flag: String) throws -> String {
            guard let text else { return Timestamp.nowMilliseconds() }
            guard let seconds = Timestamp.parse(text) else {
                throw MLVError.invalidArgument("\(flag) '\(text)' is not an RFC 3339 UTC time (2026-11-27T01:00:00Z) or a date")
            }
            return Timestamp.format(seconds: seconds)
        }
        let started = try time(request.started, "--started")
        let ended = request.ended == nil && request.started != nil ? started : try time(request.ended, "--ended")
        if let a = Timestamp.parse(String(started.prefix(19)) + "Z"), let b = Timestamp.parse(String(ended.prefix(19)) + "Z"), b < a {
            throw MLVError.invalidArgument("--ended \(ended) is before --started \(started)")
        }
        let run = Repository.newRunID()
        let scratch = storePath + "/tmp/import-" + run
        try wrap { try FS.makeDirectories(scratch) }
        defer { try? FS.removeTree(scratch) }

        var seriesPath: String?
        var last: [String: Double] = [:]
        if let file = request.metricsFile {
            let path = FS.absolute(file, relativeTo: request.directory)
            guard FS.exists(path) else { throw MLVError.pathNotFound(file) }
            if FS.isDirectory(path) { throw MLVError.invalidArgument("metrics file '\(file)' is a directory") }
            let series = try MetricSeries(path: scratch + "/series.jsonl")
            try LineTail(path: path).poll(final: true) { line, number in
                try series.take(line, file: file, number: number, arrival: started)
                if let p = series.problems.first {
                    throw MLVError.invalidArgument("metrics file '\(file)' line \(p.line): \(p.reason); nothing recorded")
                }
            }
            try series.close()
            if series.points > 0 { seriesPath = series.path }
            last = series.last
        }
        var logPath: String?
        if let file = request.logFile {
            let path = FS.absolute(file, relativeTo: request.directory)
            guard FS.exists(path) else { throw MLVError.pathNotFound(file) }
            var formatter = TerminalLogFormatter()
            let out = try FileAppender(path: scratch + "/log")
            let stamp = Array(started.utf8)
            let source: MappedFile
            do { source = try MappedFile(path: path) } catch let e as FileSystemError { throw MLVError.unreadable(path: file, cause: e) }
            var at = 0
            var buffer: [UInt8] = []
            while at < source.count {
                let end = min(source.count, at + (1 << 20))
                formatter.feed(.out, UnsafeRawBufferPointer(rebasing: source.bytes[at..<end]), time: stamp, into: &buffer)
                try out.append(buffer)
                buffer.removeAll(keepingCapacity: true)
                at = end
            }
            formatter.finish(time: stamp, into: &buffer)
            try out.append(buffer)
            try out.close()
            logPath = out.path
        }
        var code: RunCode?
        if !request.code.isEmpty {
            let guardLock = try lock(.shared)
            defer { withExtendedLifetime(guardLock) {} }
            let writer = objects.writer()
            do {
                let snapshot = try snapshotCode(request.code.map { FS.absolute($0, relativeTo: request.directory) }, writer: writer)
                try wrap { try writer.commit() }
                code = RunCode(snapshot: snapshot.id)
            } catch {
                writer.abort()
                throw error
            }
        }
        var manifest = RunManifest(run: run, name: request.name, command: request.command,
                                   cwd: displayPath(FS.absolute(request.directory)), started: started, ended: ended,
                                   status: request.status, exitCode: request.exitCode, params: request.params,
                                   metrics: last, inputs: inputs, code: code, author: try actingIdentity(),
                                   message: request.message, meta: request.meta.merging(["imported": "true"]) { a, _ in a })
        if manifest.exitCode == nil && request.status == .succeeded { manifest.exitCode = 0 }
        let files = RunFiles(log: logPath, series: seriesPath, system: nil, environment: [])
        return try storeRun(&manifest, files: files, outputs: outputs, directory: request.directory, activeDirectory: nil).record
    }
}

/// What `mlv rerun` will do.
public struct RerunPlan: Sendable {
    public var original: RunRecord
    /// The code snapshot checked out into the work directory.
    public var snapshot: ObjectID
    /// Where the snapshot goes; nil for a new temporary directory.
    public var workdir: String?
    /// The working directory inside the snapshot (`.` for its root).
    public var cwdInSnapshot: String
    public var request: RunRequest
}

extension Repository {
    /// Plans a rerun of `text` (a run id, prefix or name): the same code snapshot,
    /// inputs, params, command and outputs, in a fresh work directory.
    /// - Throws: `MLVError` when the run is unknown or has no code snapshot.
    public func planRerun(_ text: String, workdir: String?) throws -> RerunPlan {
        let original = try resolveRun(text)
        let m = original.manifest
        guard let snapshot = m.code?.snapshot else {
            throw MLVError.refused("run \(original.run) has no code snapshot (it ran outside git without --code); it cannot be rerun")
        }
        guard !m.command.isEmpty else { throw MLVError.refused("run \(original.run) has no command (it was imported with 'mlv log run')") }
        if let workdir, FS.exists(workdir), !((try? FS.listDirectory(workdir))?.isEmpty ?? false) {
            throw MLVError.refused("--workdir '\(workdir)' exists and is not empty")
        }
        let cwd = m.meta["codeCwd"] ?? "."
        if cwd != ".", let p = PathRules.problem(withRelativePath: cwd) { throw MLVError.unsafePath(path: cwd, reason: p) }
        var request = RunRequest(name: m.name, command: m.command)
        request.params = m.params
        request.resolvedInputs = m.inputs
        request.inputs = m.inputs.map { i in "\(i.role)=\(i.ref ?? i.id.hex)" }
        request.outputs = m.outputs.map { "\($0.kind):\($0.name)=\($0.path)" }
        request.message = m.message
        request.meta = m.meta.filter { $0.key != "codeCwd" && $0.key != "rerunOf" }
        request.meta["rerunOf"] = original.run
        request.presetCode = (m.code!, cwd)
        return RerunPlan(original: original, snapshot: snapshot, workdir: workdir, cwdInSnapshot: cwd, request: request)
    }

    /// Checks the plan's code snapshot out into its work directory (a new temporary one
    /// when none was given) and returns a launcher ready to run there.
    /// - Throws: checkout and store errors.
    public func prepareRerun(_ plan: RerunPlan) throws -> (launcher: RunLauncher, workdir: String) {
        let workdir: String
        if let given = plan.workdir {
            workdir = FS.absolute(given)
        } else {
            let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
            var template = Array("\(base)/mlv-rerun-\(plan.original.run)-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else {
                throw MLVError.store(.io(FileSystemError(call: "mkdtemp", path: base, errno: errno)))
            }
            workdir = String(cString: made)
        }
        let json = try manifestJSON(plan.snapshot)
        let manifest = try wrap { try CodeManifest(json: json) }
        _ = try checkoutTree(manifest.root, to: workdir)
        var request = plan.request
        request.directory = plan.cwdInSnapshot == "." ? workdir : workdir + "/" + plan.cwdInSnapshot
        if !FS.isDirectory(request.directory) { try wrap { try FS.makeDirectories(request.directory) } }
        return (try RunLauncher(repository: self, request: request), workdir)
    }
}
