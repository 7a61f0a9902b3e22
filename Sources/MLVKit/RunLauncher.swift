import Dispatch
import MLVBasics
import MLVModel
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// `--output KIND:NAME=PATH`: a file or directory a run writes, to become a version.
public struct RunOutputSpec: Sendable, Equatable {
    public var kind: ArtifactKind
    public var name: String
    public var path: String

    public init(kind: ArtifactKind, name: String, path: String) {
        self.kind = kind; self.name = name; self.path = path
    }

    /// Parses `KIND:NAME=PATH` (KIND is `dataset` or `model`).
    /// - Throws: `MLVError.invalidArgument` / `.invalidName` naming the spec.
    public init(parsing text: String) throws {
        guard let colon = text.firstIndex(of: ":"), let eq = text.firstIndex(of: "="), colon < eq else {
            throw MLVError.invalidArgument("--output '\(text)': expected KIND:NAME=PATH (KIND: dataset or model)")
        }
        guard let kind = ArtifactKind(rawValue: String(text[..<colon])) else {
            throw MLVError.invalidArgument("--output '\(text)': kind '\(text[..<colon])' is not dataset or model")
        }
        let name = String(text[text.index(after: colon)..<eq]), path = String(text[text.index(after: eq)...])
        if let p = ArtifactName.problem(with: name) { throw MLVError.invalidName(name, reason: "--output: \(p)") }
        if path.isEmpty { throw MLVError.invalidArgument("--output '\(text)': the path is empty") }
        self.init(kind: kind, name: name, path: path)
    }

    public var text: String { "\(kind.rawValue):\(name)=\(path)" }
}

/// What `mlv run` was asked to do.
public struct RunRequest: Sendable {
    /// The run's name; nil derives one from the command (`train` for `python train.py`).
    public var name: String?
    public var command: [String]
    public var params: [String: String] = [:]
    /// `[ROLE=]REF[#SPLIT]`, resolved before anything runs (default role `input`).
    public var inputs: [String] = []
    /// `KIND:NAME=PATH`.
    public var outputs: [String] = []
    /// `--code PATH`: files to snapshot (outside git), or to add to the git snapshot.
    public var code: [String] = []
    /// Seconds between system metric samples.
    public var metricsInterval: Double = 5
    /// Give the command a pseudo-terminal for each of stdout and stderr that is a
    /// terminal here (`--no-pty` turns this off; pipes are used where it is not one).
    public var terminal: Bool = true
    public var message: String = ""
    public var meta: [String: String] = [:]
    /// Where the command runs (default: the current directory).
    public var directory: String = FS.currentDirectory()
    /// Inputs already resolved (a rerun's), used instead of `inputs`.
    var resolvedInputs: [Input]?
    /// The code a rerun checked out, used instead of capturing it.
    var presetCode: (code: RunCode, cwdInSnapshot: String?)?

    public init(name: String? = nil, command: [String]) {
        self.name = name
        self.command = command
    }
}

/// What a finished `mlv run` recorded.
public struct RunResult: Sendable {
    public var record: RunRecord
    /// Metric lines that were skipped, with their line numbers.
    public var metricProblems: [MetricLineProblem]
    /// `--output` paths the command never wrote.
    public var missingOutputs: [RunOutputSpec]
    /// Why the command could not be started (not found, not executable), if so.
    public var startFailure: String?
    /// The status mlv exits with: the command's, 128 + signal, 127 when not found, and
    /// non-zero when an output is missing although the command succeeded.
    public var exitStatus: Int32
}

/// Runs one command as a recorded run: captures code and inputs before it starts,
/// passes its output through while logging it, forwards signals, samples the system,
/// follows its metrics file, then stores everything and records the run.
///
/// Write order (docs/design.md "Write ordering"): log, series, system, environment and
/// diff blobs, the code snapshot and output manifests go to packs and are committed;
/// then `refs/runs/<id>` is created; then the output version refs; then the active
/// directory is removed.
public final class RunLauncher: @unchecked Sendable {
    public let repository: Repository
    public let request: RunRequest
    public let runID: String
    public let name: String
    public let inputs: [Input]
    public let outputs: [RunOutputSpec]
    public let code: RunCode?
    public let fingerprint: ObjectID
    /// The newest three recorded runs with the same fingerprint (same code snapshot, inputs
    /// and params) and the same command, oldest first. (Without a code snapshot the
    /// fingerprint alone would call any two parameterless commands identical.)
    public let previous: [RunRecord]
    /// How many such runs there are in all.
    public let previousCount: Int
    let cwdInSnapshot: String?
    private let saveCodeCache: () -> Void
    let activeDirectory: String

    /// Validates the request, resolves the inputs, captures and stores the code, and
    /// finds earlier runs with the same fingerprint. Nothing runs yet.
    /// - Throws: `MLVError` for a bad input ref, output spec, name or `--code` path.
    public init(repository: Repository, request: RunRequest) throws {
        self.repository = repository
        self.request = request
        guard !request.command.isEmpty else { throw MLVError.invalidArgument("no command given (mlv run [OPTIONS] -- CMD ARGS...)") }
        name = request.name ?? Self.defaultName(request.command)
        if name.isEmpty || name.utf8.contains(where: { $0 < 32 }) {
            throw MLVError.invalidName(name, reason: "a run name needs at least one character and no control characters")
        }
        if !(request.metricsInterval > 0) { throw MLVError.invalidArgument("--metrics-interval must be more than 0 seconds") }
        for key in request.params.keys where key.isEmpty {
            throw MLVError.invalidArgument("--param with an empty name")
        }
        inputs = try request.resolvedInputs ?? repository.parseRunInputs(request.inputs)
        outputs = try request.outputs.map(RunOutputSpec.init(parsing:))
        var seen = Set<String>()
        for o in outputs where !seen.insert("\(o.kind):\(o.name)").inserted {
            throw MLVError.invalidArgument("--output \(o.kind.rawValue):\(o.name) given twice")
        }
        runID = Repository.newRunID()
        activeDirectory = repository.storePath + "/active/" + runID

        if let preset = request.presetCode {
            code = preset.code
            cwdInSnapshot = preset.cwdInSnapshot
            saveCodeCache = {}
        } else {
            let guardLock = try repository.lock(.shared)
            defer { withExtendedLifetime(guardLock) {} }
            let writer = repository.objects.writer()
            do {
                let captured = try repository.captureCode(directory: request.directory, extraPaths: request.code, writer: writer)
                if writer.written.objects == 0 { writer.abort() } else { try wrap { try writer.commit() } }
                code = captured?.code
                cwdInSnapshot = captured?.cwdInSnapshot
                saveCodeCache = captured?.saveCache ?? {}
            } catch {
                writer.abort()
                throw error
            }
        }
        fingerprint = RunManifest.fingerprint(code: code?.snapshot, inputs: inputs, params: request.params)
        (previousCount, previous) = try repository.runs(fingerprint: fingerprint, command: request.command, limit: 3)
    }

    /// `train` for `python train.py`, `sh` for `sh -c ...`: the first script argument's
    /// base name without extension, else the program's base name.
    static func defaultName(_ command: [String]) -> String {
        let script = command.dropFirst().first { $0.hasSuffix(".py") || $0.hasSuffix(".sh") || $0.hasSuffix(".R") || $0.hasSuffix(".jl") }
        var base = FS.baseName(of: script ?? command[0])
        if let dot = base.lastIndex(of: "."), dot != base.startIndex { base = String(base[..<dot]) }
        return base
    }

    /// Runs the command to its end and records the run.
    /// - Parameters:
    ///   - stdout, stderr: where the command's output is passed through (mlv's own by default).
    /// - Throws: store errors while recording; the command's failure is not an error.
    public func run(stdout passOut: Int32 = 1, stderr passErr: Int32 = 2) throws -> RunResult {
        let started = Timestamp.nowMilliseconds()
        let cwd = FS.absolute(request.directory)
        try wrap { try FS.makeDirectories(activeDirectory) }
        var stateFields: [String: JSON] = [
            "run": .string(runID), "name": .string(name), "command": .array(request.command.map { .string($0) }),
            "cwd": .string(repository.displayPath(cwd)), "started": .string(started), "pid": .int(Int64(getpid())),
            "host": .string(hostName()),
        ]
        // gc keeps what an active run's code capture committed.
        if let snapshot = code?.snapshot { stateFields["code"] = .string(snapshot.hex) }
        if let diff = code?.diff { stateFields["diff"] = .string(diff.hex) }
        let state = JSON.object(stateFields)
        try wrap { try FS.atomicWrite(activeDirectory + "/state", state.canonicalBytes() + [10], durable: false) }
        let metricsPath = activeDirectory + "/metrics.jsonl"
        try wrap { FS.close(try FS.open(metricsPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o644)) }

        var env = Subprocess.currentEnvironment()
        env["MLV_RUN_ID"] = runID
        env["MLV_METRICS_FILE"] = metricsPath
        if RunEnvironment.runsPython(request.command), env["PYTHONUNBUFFERED"] == nil { env["PYTHONUNBUFFERED"] = "1" }

        let log = try TerminalLogWriter(path: activeDirectory + "/log")
        // The log is chunked and stored while it grows, into the writer that later
        // commits everything the run recorded.
        let writer = repository.objects.writer()
        let logBlob = try GrowingBlob(path: log.path, writer: writer, chunker: repository.config.chunker)
        logBlob.start()
        // A failure before the log is finished stops the background storing: left running
        // it would poll the log, and hold the writer and its temp pack, for the life of
        // the process.
        var logBlobFinished = false
        defer { if !logBlobFinished { logBlob.cancel() } }
        let series = try MetricSeries(path: activeDirectory + "/series.jsonl")
        let system = try FileAppender(path: activeDirectory + "/system.jsonl")
        var systemSamples = 0
        let metricsTail = LineTail(path: metricsPath)
        func takeMetrics(final: Bool) throws {
            try metricsTail.poll(final: final) { line, number in
                try series.take(line, file: "MLV_METRICS_FILE", number: number, arrival: Timestamp.nowMilliseconds())
            }
        }

        // The environment is captured beside the command (pip freeze takes a while).
        let environmentGroup = DispatchGroup()
        let environment = Locked<JSON?>(nil)
        let command = request.command
        var childEnv = env
        childEnv.removeValue(forKey: "MLV_METRICS_FILE")
        let capturedEnv = childEnv
        DispatchQueue.global().async(group: environmentGroup) {
            let json = RunEnvironment.capture(command: command, variables: capturedEnv, directory: cwd)
            environment.withLock { $0 = json }
        }

        var termination: Termination
        var interrupted = false
        var startFailure: String?
        // A terminal or pipe that stops reading our output must not end the run before it
        // is recorded: `Pipes.writeAll` blocks SIGPIPE around each write, so nothing here
        // touches its process-wide disposition (and the child starts with it at default).
        // A stream that is a terminal here gets a pseudo-terminal of its own (one per
        // stream, so the log still tells out from err), sized like ours; a pipe where
        // none can be had (no /dev/ptmx in a container, say).
        let terminals = [passOut, passErr].map { fd -> PseudoTerminal? in
            guard request.terminal, PseudoTerminal.isTerminal(fd) else { return nil }
            return try? PseudoTerminal(size: PseudoTerminal.windowSize(of: fd))
        }
        let forwarder = try wrap { try SignalForwarder(signals: [SIGINT, SIGTERM] + (terminals.contains { $0 != nil } ? [SIGWINCH] : [])) }
        defer { forwarder.uninstall() }
        do {
            let child = try Subprocess(arguments: request.command, environment: env, directory: cwd,
                                       stdout: terminals[0].map { .descriptor($0.child) } ?? .pipe,
                                       stderr: terminals[1].map { .descriptor($0.child) } ?? .pipe)
            // Reaped on every way out, after the pipes below are closed (defers run last
            // first): a failure while relaying waits for the command to end (it sees EPIPE
            // once it writes) instead of leaving a zombie in this process.
            defer { _ = child.wait() }
            for t in terminals { t?.closeChild() }
            let sampler = FS.isDirectory("/proc/self") ? SystemSampler(root: child.pid) : nil
            let outFD = terminals[0]?.master ?? child.stdoutPipe, errFD = terminals[1]?.master ?? child.stderrPipe
            var open: [Int32] = [outFD, errFD]
            var pipeCapacityRaised = terminals.allSatisfy { $0 == nil }
            for fd in open where terminals.allSatisfy({ $0?.master != fd }) {
                if !Pipes.setCapacity(fd, 1 << 20) { pipeCapacityRaised = false }
            }
            func close(_ fd: Int32) {
                if let t = terminals.first(where: { $0?.master == fd }) { t?.closeMaster() } else { Glibc.close(fd) }
                open.removeAll { $0 == fd }
            }
            // A failure while relaying (the log cannot be written, say) still closes the
            // read ends: each one exactly once, as `close` takes it out of `open`.
            defer { for fd in open { close(fd) } }
            func takeSignals() {
                for s in forwarder.take() {
                    if s.signal == SIGINT { interrupted = true }
                    if s.signal == SIGWINCH {
                        // The child saw the terminal's SIGWINCH already, perhaps before its
                        // pseudo-terminal was resized: resize, then tell it again.
                        for (fd, t) in zip([passOut, passErr], terminals) {
                            if let t, let size = PseudoTerminal.windowSize(of: fd) { t.setSize(size) }
                        }
                        child.send(SIGWINCH)
                    } else if !s.fromTerminal {
                        child.send(s.signal)
                    }
                }
            }
            var passOK = [true, true]
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            let sampleEvery = max(50, Int(request.metricsInterval * 1000))
            var nextSample = monotonicMilliseconds() + sampleEvery
            var nextMetrics = monotonicMilliseconds() + 1000
            var exitedAt: Int?
            while !open.isEmpty {
                var relayed = 0
                let now = monotonicMilliseconds()
                if let exitedAt, now - exitedAt > 200 {
                    // The command ended but something it started holds the pipes open:
                    // stop waiting for them, as a shell would.
                    break
                }
                let wait = Int32(max(0, min(nextSample, nextMetrics, exitedAt.map { $0 + 200 } ?? Int.max) - now))
                for fd in Pipes.waitReadable(open + [forwarder.readEnd], timeoutMilliseconds: min(wait, 1000)) {
                    if fd == forwarder.readEnd {
                        takeSignals()
                        continue
                    }
                    // A pseudo-terminal's master reports the end as EIO rather than 0.
                    let n = buffer.withUnsafeMutableBytes { Pipes.read(fd, into: $0) }
                    if n <= 0 {
                        close(fd)
                        continue
                    }
                    relayed += n
                    let isOut = fd == outFD
                    try buffer.withUnsafeBytes { raw in
                        let data = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                        if passOK[isOut ? 0 : 1] { passOK[isOut ? 0 : 1] = Pipes.writeAll(isOut ? passOut : passErr, data) }
                        try log.write(isOut ? .out : .err, data)
                    }
                }
                let after = monotonicMilliseconds()
                if after >= nextMetrics {
                    // Written through, so `mlv metrics` and `mlv logs --follow` on the
                    // running run see the points and lines (the log is otherwise written
                    // in 256 KiB blocks).
                    try takeMetrics(final: false)
                    try series.flush()
                    try log.flush()
                    nextMetrics = after + 1000
                }
                if after >= nextSample {
                    if let s = sampler?.sample() { try system.append(s.line); systemSamples += 1 }
                    nextSample = after + sampleEvery
                }
                if exitedAt == nil, child.poll() != nil { exitedAt = after }
                // A chatty command writes a few KiB at a time; waking for each write costs
                // it (and us) a context switch per write. While output flows and the pipes
                // hold 1 MiB (refilled in a millisecond only above 1 GB/s), pause briefly
                // so each read takes many writes at once; the pause delays output by a
                // millisecond at most. An idle command is still waited for in poll(2).
                if pipeCapacityRaised, relayed > 0, relayed < 256 << 10, exitedAt == nil { usleep(1000) }
            }
            for fd in open { close(fd) }
            // Keep forwarding signals until the command has ended.
            while child.poll() == nil {
                for fd in Pipes.waitReadable([forwarder.readEnd], timeoutMilliseconds: 100) where fd == forwarder.readEnd {
                    takeSignals()
                }
            }
            termination = child.wait()
            for s in forwarder.take() where s.signal == SIGINT { interrupted = true }
        } catch let e as FileSystemError where e.call == "posix_spawnp" {
            let code: Int32 = (e.errno == EACCES || e.errno == ENOEXEC) ? 126 : 127
            startFailure = code == 127 ? "command not found: \(request.command[0])" : "cannot execute \(request.command[0]): \(String(cString: strerror(e.errno)))"
            termination = .exited(code)
            let line = Array("mlv: \(startFailure!)\n".utf8)
            try line.withUnsafeBytes { try log.write(.err, $0) }
        }
        try log.close()
        logBlobFinished = true
        let logID = try logBlob.finish()
        try takeMetrics(final: true)
        try series.close()
        try system.close()
        let ended = Timestamp.nowMilliseconds()
        environmentGroup.wait()

        var manifest = RunManifest(run: runID, name: name, command: request.command, cwd: repository.displayPath(cwd),
                                   started: started, ended: ended, status: .succeeded, params: request.params,
                                   metrics: series.last, inputs: inputs, code: code, author: try repository.actingIdentity(),
                                   message: request.message, meta: request.meta)
        switch termination {
        case .exited(0):
            manifest.exitCode = 0
        case .exited(let c):
            manifest.status = interrupted ? .interrupted : .failed
            manifest.exitCode = Int64(c)
        case .signaled(let s):
            manifest.status = s == SIGINT ? .interrupted : .killed
            manifest.signal = signalName(s)
        }
        if let cwdInSnapshot { manifest.meta["codeCwd"] = cwdInSnapshot }
        let envBytes = environment.withLock { $0 }?.canonicalBytes() ?? []
        manifest.log = logID
        let files = RunFiles(log: nil, series: series.points > 0 ? series.path : nil,
                             system: systemSamples > 0 ? system.path : nil, environment: envBytes)
        let stored = try repository.storeRun(&manifest, files: files, outputs: outputs, directory: cwd,
                                             activeDirectory: activeDirectory, writer: writer)
        repository.noteDeferredCompression(logBlob.storedRaw)
        saveCodeCache()
        var exit = termination.shellStatus
        if exit == 0 && !stored.missing.isEmpty { exit = 1 }
        return RunResult(record: stored.record, metricProblems: series.problems, missingOutputs: stored.missing,
                         startFailure: startFailure, exitStatus: exit)
    }
}

/// The files a run leaves in its active directory, to be stored as blobs.
struct RunFiles {
    var log: String?
    var series: String?
    var system: String?
    var environment: [UInt8]
}

extension Repository {
    /// Recorded runs with this fingerprint and command: how many, and the newest `limit`
    /// of them, oldest first. Each run's fingerprint is kept in a derived cache
    /// (`cache/run-fingerprints`: run id, manifest id, fingerprint, XXH3 of the command,
    /// start time; one run per line). Run refs are create-only, so a run already in the
    /// cache costs no read at all: only new runs are read, and the newest matches, whose
    /// ref is read again to confirm the cached manifest id and whose command is compared
    /// in full, before they are returned. Older matches are counted from the cache alone.
    /// - Throws: store errors; a damaged run record.
    func runs(fingerprint: ObjectID, command: [String], limit: Int) throws -> (count: Int, newest: [RunRecord]) {
        typealias Entry = (id: ObjectID, fingerprint: ObjectID, command: UInt64, started: String)
        let cacheFile = cachePath + "/run-fingerprints"
        var cache: [String: Entry] = [:]
        for line in (try? FS.readFileIfExists(cacheFile))??.split(separator: 10) ?? [] {
            let parts = line.split(separator: 32)
            guard parts.count == 5, let id = ObjectID(hex: String(decoding: parts[1], as: UTF8.self)),
                  let fp = ObjectID(hex: String(decoding: parts[2], as: UTF8.self)),
                  let c = UInt64(String(decoding: parts[3], as: UTF8.self), radix: 16) else { continue }
            cache[String(decoding: parts[0], as: UTF8.self)] = (id, fp, c, String(decoding: parts[4], as: UTF8.self))
        }
        func commandKey(_ command: [String]) -> UInt64 {
            XXHash.xxh3_64(JSON.array(command.map { .string($0) }).canonicalBytes())
        }
        func cached(_ id: ObjectID, _ m: RunManifest) -> Entry { (id, m.fingerprint, commandKey(m.command), m.started) }
        let wanted = commandKey(command)
        var changed = false
        var live: [String: Entry] = [:]
        var read: [String: RunManifest] = [:]
        for run in try wrap({ try refs.runIDs() }) {
            if let entry = cache[run] {
                live[run] = entry
                continue
            }
            guard let id = try wrap({ try refs.run(run) }) else { continue }
            let m = try runManifest(id)
            live[run] = cached(id, m)
            read[run] = m
            changed = true
        }
        var candidates = live.filter { $0.value.fingerprint == fingerprint && $0.value.command == wanted }
            .sorted { ($0.value.started, $0.key) > ($1.value.started, $1.key) }
        var count = candidates.count
        var newest: [RunRecord] = []
        while newest.count < limit, !candidates.isEmpty {
            let (run, entry) = candidates.removeFirst()
            var id = entry.id
            var m = read[run]
            if m == nil {
                // The ref decides: a cache line that disagrees with it is corrected.
                guard let actual = try wrap({ try refs.run(run) }) else { count -= 1; continue }
                m = try runManifest(actual)
                if actual != entry.id {
                    id = actual
                    live[run] = cached(actual, m!)
                    changed = true
                }
            }
            if m!.fingerprint == fingerprint && m!.command == command {
                newest.append(RunRecord(run: run, id: id, manifest: m!))
            } else {
                count -= 1
            }
        }
        if changed || live.count != cache.count {
            var text = ""
            for (run, e) in live.sorted(by: { $0.key < $1.key }) {
                text += "\(run) \(e.id.hex) \(e.fingerprint.hex) \(String(e.command, radix: 16)) \(e.started)\n"
            }
            try? FS.atomicWrite(cacheFile, Array(text.utf8), durable: false)
        }
        return (count, newest.reversed())
    }

    /// Parses `[ROLE=]REF[#SPLIT]` run inputs (default role `input`), resolving each.
    /// - Throws: `MLVError` for a bad role or an unknown ref.
    func parseRunInputs(_ specs: [String]) throws -> [Input] {
        try parseInputs(specs, defaultRole: "input")
    }

    /// Stores a finished run: blobs and output manifests to packs (`writer`, which may
    /// already hold some, such as the log), committed, then
    /// `refs/runs/<id>`, then the output version refs (only when the run succeeded),
    /// then removes `activeDirectory`.
    func storeRun(_ manifest: inout RunManifest, files: RunFiles, outputs: [RunOutputSpec], directory: String,
                  activeDirectory: String?, writer given: PackWriter? = nil) throws -> (record: RunRecord, missing: [RunOutputSpec]) {
        let guardLock = try lock(.shared)
        defer { withExtendedLifetime(guardLock) {} }
        let writer = given ?? objects.writer()
        var prepared: [PreparedVersion] = []
        var missing: [RunOutputSpec] = []
        do {
            if let log = files.log { manifest.log = try storeFileBlob(log, writer: writer) }
            if let series = files.series { manifest.series = try storeFileBlob(series, writer: writer) }
            if let system = files.system { manifest.system = try storeFileBlob(system, writer: writer) }
            if !files.environment.isEmpty { manifest.environment = try storeBlob(files.environment, writer: writer) }
            for spec in outputs {
                let path = FS.absolute(spec.path, relativeTo: directory)
                guard FS.exists(path) else {
                    missing.append(spec)
                    manifest.outputs.append(RunOutput(kind: spec.kind.rawValue, name: spec.name, path: spec.path, id: nil, status: .missing))
                    continue
                }
                try checkVersionRequest(name: spec.name, path: path, splits: [:])
                let p = try prepareVersion(spec.kind, name: spec.name, path: path, message: manifest.message,
                                           inputs: manifest.inputs, splits: [:], meta: [:], run: manifest.run,
                                           writer: writer, progress: nil)
                prepared.append(p)
                manifest.outputs.append(RunOutput(kind: spec.kind.rawValue, name: spec.name, path: spec.path, id: p.id,
                                                  status: manifest.status == .succeeded ? .stored : .failed))
            }
        } catch {
            writer.abort()
            throw error
        }
        let id = try recordRun(manifest, writer: writer)
        if manifest.status == .succeeded {
            for p in prepared {
                if p.unchangedFrom == nil { _ = try createVersionRef(p) } else { p.saveCache() }
            }
        }
        if let activeDirectory { try? FS.removeTree(activeDirectory) }
        return (RunRecord(run: manifest.run, id: id, manifest: manifest), missing)
    }

    /// Stores a file as one blob, chunked like any other, reading it through a mapping
    /// whose pages are dropped as it goes (a multi-GB log never sits in memory).
    func storeFileBlob(_ path: String, writer: PackWriter) throws -> ObjectID {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch let e as FileSystemError { throw MLVError.unreadable(path: path, cause: e) }
        return try storeBlob(file.bytes, writer: writer)
    }
}
