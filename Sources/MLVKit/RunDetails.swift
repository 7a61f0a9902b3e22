import MLVBasics
import MLVModel
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// A run found by `mlv show run` / `mlv logs`: recorded, or still active.
public enum RunLocation: Sendable {
    case recorded(RunRecord)
    case active(ActiveRun)
}

/// One metric's series with its summary.
public struct MetricHistory: Sendable {
    public var name: String
    public var points: [MetricPoint]
    /// Over the finite values; nil when there are none.
    public var min: Double?
    public var max: Double?
    public var last: Double?
}

/// `mlv.environment/1`, read leniently: every field is optional, so environments
/// recorded by any mlv decode.
public struct RecordedEnvironment: Sendable, Equatable {
    public var os: String?
    public var kernel: String?
    public var cpuModel: String?
    public var cores: Int64?
    public var memory: Int64?
    public var gpus: [String]
    public var pythonVersion: String?
    /// `pip freeze` lines, e.g. `numpy==1.26.4`.
    public var packages: [String]
    /// Redacted values read `<redacted>`.
    public var variables: [String: String]

    /// The simple fields (os, kernel, cpu, cores, memory, gpus, python) as name -> text.
    public var summaryFields: [(String, String)] {
        var out: [(String, String)] = []
        if let os { out.append(("os", os)) }
        if let kernel { out.append(("kernel", kernel)) }
        if let cpuModel { out.append(("cpu", cpuModel)) }
        if let cores { out.append(("cores", "\(cores)")) }
        if let memory { out.append(("memory", "\(memory)")) }
        if !gpus.isEmpty { out.append(("gpus", gpus.joined(separator: "; "))) }
        if let pythonVersion { out.append(("python", pythonVersion)) }
        return out
    }

    init(json: JSON) throws {
        guard json["schema"]?.string == "mlv.environment/1" else {
            throw ModelError("not an environment (schema \(json["schema"]?.string ?? "missing"))")
        }
        os = json["os"]?.string
        kernel = json["kernel"]?.string
        cpuModel = json["cpu"]?["model"]?.string
        cores = json["cpu"]?["cores"]?.int
        memory = json["memory"]?.int
        gpus = (json["gpus"]?.array ?? []).map { g in
            g.string ?? String(decoding: g.canonicalBytes(), as: UTF8.self)
        }
        pythonVersion = json["python"]?["version"]?.string
        packages = (json["python"]?["packages"]?.array ?? []).compactMap(\.string)
        variables = (json["variables"]?.object ?? [:]).compactMapValues(\.string)
    }
}

/// What the system samples of a run add up to.
public struct SystemSummary: Sendable, Equatable {
    public var samples: Int
    /// Largest RSS of the process tree, bytes.
    public var peakRSS: Int64?
    /// Mean CPU percent over the samples.
    public var meanCPU: Double?
    public var peakCPU: Double?
}

/// The size of a run's git diff: files, added and removed lines, binary files.
public struct DiffStat: Sendable, Equatable {
    public var files = 0
    public var insertions = 0
    public var deletions = 0
    public var binaryFiles = 0
}

/// Everything `mlv show run` prints beyond the manifest.
public struct RunDetails: Sendable {
    public var record: RunRecord
    /// `NAME@vN` (`model:NAME@vN`) of input and output manifests, by reverse lookup.
    public var versionNames: [ObjectID: String]
    public var durationMilliseconds: Int64?
    public var environment: RecordedEnvironment?
    public var system: SystemSummary?
    public var diffStat: DiffStat?
}

/// Splits a byte stream into lines (without their `\n`); the last line may lack one.
public struct LineSplitter: Sendable {
    private var pending: [UInt8] = []

    public init() {}

    /// Calls `line` for each line completed by `bytes`; keeps the unfinished rest.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ line: ([UInt8]) throws -> Void) rethrows {
        var start = 0
        for i in 0..<bytes.count where bytes[i] == 10 {
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
            try line(pending)
            pending.removeAll(keepingCapacity: true)
            start = i + 1
        }
        pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start...]))
    }

    /// Calls `line` with the unfinished rest, if any.
    public mutating func finish(_ line: ([UInt8]) throws -> Void) rethrows {
        if !pending.isEmpty { try line(pending) }
        pending = []
    }
}

/// One line of a run's terminal log: `<RFC 3339 time> <out|err> <text>`.
public struct LogLine: Sendable, Equatable {
    /// Nil when the line does not have the recorded shape (then `text` is all of it).
    public var time: String?
    /// `out` or `err`.
    public var stream: String?
    /// The line as the program wrote it (invalid UTF-8 replaced by U+FFFD).
    public var text: String

    public init(time: String?, stream: String?, text: String) {
        self.time = time; self.stream = stream; self.text = text
    }

    /// Parses one log line (without its newline).
    public init(parsing bytes: [UInt8]) {
        let space = UInt8(ascii: " ")
        if let first = bytes.firstIndex(of: space), first > 0, bytes.count >= first + 5, bytes[first + 4] == space {
            let stream = String(decoding: bytes[(first + 1)..<(first + 4)], as: UTF8.self)
            if stream == "out" || stream == "err" {
                time = String(decoding: bytes[..<first], as: UTF8.self)
                self.stream = stream
                text = String(decoding: bytes[(first + 5)...], as: UTF8.self)
                return
            }
        }
        time = nil; stream = nil
        text = String(decoding: bytes, as: UTF8.self)
    }
}

/// A one-line Unicode sparkline (`▁▂▃▄▅▆▇█`) of `values`, at most `width` characters:
/// longer series are averaged into `width` buckets. Non-finite values are spaces; a
/// series whose finite values are all equal is drawn at the middle level (`▄`).
public func sparkline(_ values: [Double], width: Int = 40) -> String {
    guard !values.isEmpty, width > 0 else { return "" }
    let levels = Array("▁▂▃▄▅▆▇█")
    var buckets: [Double] = []
    if values.count <= width {
        buckets = values
    } else {
        for b in 0..<width {
            let lo = b * values.count / width, hi = (b + 1) * values.count / width
            let slice = values[lo..<hi].filter(\.isFinite)
            buckets.append(slice.isEmpty ? .nan : slice.reduce(0, +) / Double(slice.count))
        }
    }
    let finite = buckets.filter(\.isFinite)
    guard let lo = finite.min(), let hi = finite.max() else { return String(repeating: " ", count: buckets.count) }
    return String(buckets.map { v -> Character in
        guard v.isFinite else { return " " }
        if hi == lo { return levels[3] }
        return levels[Swift.min(7, Int((v - lo) / (hi - lo) * 8))]
    })
}

extension Repository {
    /// Finds a run by id, unique prefix of 4+ hex digits, or name, recorded or active. A
    /// name finds the newest run with it, so a run going on now wins over earlier records.
    /// - Throws: `MLVError.notFound` naming it (with close names), `.ambiguousPrefix`.
    public func locateRun(_ text: String) throws -> RunLocation {
        let active = try activeRuns()
        let running = active.last { $0.name == text && $0.liveness == .running }
        do {
            let r = try resolveRun(text)
            if let a = running, r.manifest.name == text, r.run != a.run,
               (epochMilliseconds(a.started) ?? 0) > (epochMilliseconds(r.manifest.started) ?? 0) {
                return .active(a)
            }
            return .recorded(r)
        } catch MLVError.unknownRef(_, let suggestions) {
            let isHex = text.utf8.count >= 4 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
            let byID = isHex ? active.filter { $0.run.hasPrefix(text) } : []
            if byID.count > 1 { throw MLVError.ambiguousPrefix(text, candidates: byID.map(\.run)) }
            if let a = byID.first ?? running ?? active.last(where: { $0.name == text }) { return .active(a) }
            throw MLVError.notFound("no run '\(text)'" + (suggestions.isEmpty ? "" : "; did you mean \(suggestions.joined(separator: ", "))?"))
        }
    }

    /// A recorded run: by id, unique prefix or name (the newest record with it).
    /// - Throws: `MLVError.notFound` for an unknown run or one still going on (no record
    ///   yet); `.ambiguousPrefix`.
    public func findRun(_ text: String) throws -> RunRecord {
        do { return try resolveRun(text) } catch MLVError.unknownRef {
            switch try locateRun(text) {
            case .recorded(let r): return r
            case .active(let a): throw MLVError.notFound("run \(a.run) (\(a.name)) is \(a.liveness.rawValue) and has no record yet")
            }
        }
    }

    /// Streams one of a run's blobs; a missing or damaged blob is `MLVError.damaged`
    /// naming the run, the part and the blob id.
    func readRunBlob(_ run: String, _ part: String, _ blob: ObjectID, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        do { try readBlob(blob, body) } catch MLVError.store(let e) {
            switch e {
            case .missingObject(let id):
                throw MLVError.damaged("run \(run): its \(part) blob \(blob.hex) is missing" + (id == blob ? "" : " (chunk \(id.short))"))
            case .corruptObject:
                throw MLVError.damaged("run \(run): its \(part) blob \(blob.hex) is damaged: \(e)")
            default:
                throw MLVError.store(e)
            }
        }
    }

    /// Streams a recorded run's terminal log as `mlv.log/1` text (an `mlv.log/2` log is
    /// rendered as it is read; docs/design.md "Terminal log").
    /// - Throws: `.notFound` when the run has no log; `.damaged` naming the run and the
    ///   blob when the blob is missing or corrupt, or its frames cannot be read.
    public func streamLog(_ record: RunRecord, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard record.manifest.log != nil else { throw MLVError.notFound("run \(record.run) has no log recorded") }
        var reader = TerminalLogReader()
        try renderStoredLog(record, from: 0, reader: &reader, body)
    }

    /// Feeds a recorded run's log blob, from its byte `offset`, to `reader` and finishes it.
    private func renderStoredLog(_ record: RunRecord, from offset: Int, reader: inout TerminalLogReader,
                                 _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let log = record.manifest.log else { return }
        do {
            try streamLogBlob(record, from: offset) { try reader.feed($0, body) }
            try reader.finish(complete: true, body)
        } catch let damage as TerminalLogReader.Damage {
            throw MLVError.damaged("run \(record.run): its log blob \(log.hex) is damaged: \(damage)")
        }
    }

    /// Streams a recorded run's log blob as stored, skipping its first `offset` bytes.
    func streamLogBlob(_ record: RunRecord, from offset: Int = 0, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let log = record.manifest.log else { throw MLVError.notFound("run \(record.run) has no log recorded") }
        var skip = offset
        try readRunBlob(record.run, "log", log) { bytes in
            if skip >= bytes.count { skip -= bytes.count; return }
            try body(UnsafeRawBufferPointer(rebasing: bytes[skip...]))
            skip = 0
        }
    }

    /// How following an active run's log ended.
    public enum FollowEnd: Sendable {
        /// The run was recorded (its stored log's rest was streamed too).
        case recorded(RunRecord)
        /// The directory went away without a record (the run was discarded).
        case vanished
        /// Its process died without finishing (`.mlv/active/<id>` stays).
        case abandoned
    }

    /// Streams an active run's log as it grows (polling every `pollMilliseconds`) until its
    /// directory disappears, then the rest of the stored log, if any. Stops as well when
    /// the run's process has died on this host. Holds at most one read buffer in memory
    /// (and an unfinished line of each stream). A frame still being written is waited for.
    /// - Throws: store errors; `.damaged` when the stored log is missing or damaged, or
    ///   the active log cannot be read as one.
    public func followLog(_ active: ActiveRun, pollMilliseconds: Int = 100,
                          _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> FollowEnd {
        let path = active.directory + "/log"
        var fd: Int32 = -1
        defer { if fd >= 0 { FS.close(fd) } }
        var offset = 0
        var reader = TerminalLogReader()
        func drain() throws {
            if fd >= 0 { offset = try drainActiveLog(active, fd, from: offset, reader: &reader, body) }
        }
        func finishActive() throws {
            try activeLogDamage(active) { try reader.finish(complete: false, body) }
        }
        var polls = 0
        while true {
            if fd < 0 { fd = (try? FS.open(path, O_RDONLY)) ?? -1 }
            try drain()
            if !FS.isDirectory(active.directory) { break }
            polls += 1
            // Only a readable state with a dead pid means abandoned: a state that cannot be read
            // may be the directory being removed after the run was recorded.
            if polls % 10 == 0, let now = try activeRuns().first(where: { $0.run == active.run }), now.pid != nil,
               now.liveness == .abandoned {
                try drain()
                try finishActive()
                return .abandoned
            }
            usleep(useconds_t(pollMilliseconds * 1000))
        }
        try drain()
        guard let id = try wrap({ try refs.run(active.run) }) else {
            try finishActive()
            return .vanished
        }
        let record = RunRecord(run: active.run, id: id, manifest: try runManifest(id))
        if record.manifest.log != nil { try renderStoredLog(record, from: offset, reader: &reader, body) } else { try finishActive() }
        return .recorded(record)
    }

    /// Streams what an active run's log holds now (nothing when it has none yet): the
    /// lines finished so far, and the unfinished ones too when the run is no longer
    /// running (its writer died).
    /// - Throws: `.store(.io)` when it cannot be read; `.damaged` naming the file.
    public func streamActiveLog(_ active: ActiveRun, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let path = active.directory + "/log"
        guard let fd = try? FS.open(path, O_RDONLY) else { return }
        defer { FS.close(fd) }
        var reader = TerminalLogReader()
        _ = try drainActiveLog(active, fd, from: 0, reader: &reader, body)
        if active.liveness != .running { try activeLogDamage(active) { try reader.finish(complete: false, body) } }
    }

    private func drainActiveLog(_ active: ActiveRun, _ fd: Int32, from offset: Int, reader: inout TerminalLogReader,
                                _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        try activeLogDamage(active) {
            try drainFile(fd, path: active.directory + "/log", from: offset) { try reader.feed($0, body) }
        }
    }

    /// Reports a log reader's damage as `.damaged` naming the run and its active log.
    private func activeLogDamage<T>(_ active: ActiveRun, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let damage as TerminalLogReader.Damage {
            throw MLVError.damaged("run \(active.run): its active log \(active.directory)/log is damaged: \(damage)")
        }
    }

    /// Streams `fd` from `offset` to its current end, 64 KiB at a time; returns the new offset.
    private func drainFile(_ fd: Int32, path: String, from offset: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        var at = offset
        while true {
            let n = try wrap { try FS.pread(fd, into: buffer, at: at, path: path) }
            if n == 0 { return at }
            try body(UnsafeRawBufferPointer(rebasing: buffer[..<n]))
            at += n
        }
    }

    /// A run's metric series, in arrival order per metric, for `names` (all when empty).
    /// - Throws: `.notFound` naming a metric the run does not have; `.damaged` for a
    ///   missing series blob or a malformed line (with its number).
    public func metricSeries(_ record: RunRecord, names: [String] = []) throws -> [MetricHistory] {
        var collector = SeriesCollector(run: record.run, source: "series blob \(record.manifest.series?.hex ?? "")")
        if let series = record.manifest.series {
            var splitter = LineSplitter()
            try readRunBlob(record.run, "series", series) { bytes in try splitter.feed(bytes) { try collector.take($0) } }
            try splitter.finish { try collector.take($0) }
        }
        return try collector.histories(names: names, last: record.manifest.metrics)
    }

    /// The metric series of a run that is still going, from the points `mlv run` has
    /// taken from its metrics file so far (`.mlv/active/<id>/series.jsonl`, brought up to
    /// date about once a second; a line still being written is left for next time).
    /// - Throws: `.notFound` naming a metric the run does not have (yet); `.damaged` for
    ///   a malformed line.
    public func metricSeries(active: ActiveRun, names: [String] = []) throws -> [MetricHistory] {
        let path = active.directory + "/series.jsonl"
        var collector = SeriesCollector(run: active.run, source: path)
        if let fd = try? FS.open(path, O_RDONLY | O_CLOEXEC) {
            defer { FS.close(fd) }
            var splitter = LineSplitter()
            _ = try drainFile(fd, path: path, from: 0) { bytes in try splitter.feed(bytes) { try collector.take($0) } }
        }
        return try collector.histories(names: names, last: [:])
    }

    /// The last value of each metric of a run that is still going (see
    /// `metricSeries(active:)`); empty when it has none yet or they cannot be read.
    public func lastMetrics(active: ActiveRun) -> [String: Double] {
        let series = (try? metricSeries(active: active)) ?? []
        var out: [String: Double] = [:]
        for s in series { if let v = s.last { out[s.name] = v } }
        return out
    }

    /// Decodes a run's environment blob; nil when none was recorded.
    /// - Throws: `.damaged` when the blob is missing or not an environment.
    public func environment(of record: RunRecord) throws -> RecordedEnvironment? {
        guard let id = record.manifest.environment else { return nil }
        var bytes: [UInt8] = []
        try readRunBlob(record.run, "environment", id) { bytes.append(contentsOf: $0) }
        do { return try RecordedEnvironment(json: try JSON.parse(bytes)) } catch {
            throw MLVError.damaged("run \(record.run): environment blob \(id.hex) is not an environment: \(error)")
        }
    }

    /// Peak RSS and mean CPU over a run's system samples, streamed; nil when none were recorded.
    /// - Throws: `.damaged` when the blob is missing.
    public func systemSummary(of record: RunRecord) throws -> SystemSummary? {
        guard let id = record.manifest.system else { return nil }
        var s = SystemSummary(samples: 0)
        var cpuSum = 0.0, cpuCount = 0
        var splitter = LineSplitter()
        func take(_ line: [UInt8]) {
            guard let json = try? JSON.parse(line) else { return }
            s.samples += 1
            if let rss = json["rss"]?.int ?? json["rss"]?.double.map({ Int64($0) }) { s.peakRSS = max(s.peakRSS ?? 0, rss) }
            if let cpu = json["cpu"]?.double {
                cpuSum += cpu; cpuCount += 1
                s.peakCPU = max(s.peakCPU ?? 0, cpu)
            }
        }
        try readRunBlob(record.run, "system", id) { splitter.feed($0, take) }
        splitter.finish(take)
        if cpuCount > 0 { s.meanCPU = cpuSum / Double(cpuCount) }
        return s
    }

    /// Counts files and lines in a run's git diff, streamed; nil when it has none.
    /// - Throws: `.damaged` when the blob is missing.
    public func diffStat(of record: RunRecord) throws -> DiffStat? {
        guard let id = record.manifest.code?.diff else { return nil }
        var stat = DiffStat()
        var splitter = LineSplitter()
        func take(_ line: [UInt8]) {
            if line.starts(with: Array("diff --git ".utf8)) { stat.files += 1 }
            else if line.starts(with: Array("Binary files ".utf8)) || line.starts(with: Array("GIT binary patch".utf8)) { stat.binaryFiles += 1 }
            else if line.first == UInt8(ascii: "+"), !line.starts(with: Array("+++ ".utf8)) { stat.insertions += 1 }
            else if line.first == UInt8(ascii: "-"), !line.starts(with: Array("--- ".utf8)) { stat.deletions += 1 }
        }
        try readRunBlob(record.run, "diff", id) { splitter.feed($0, take) }
        splitter.finish(take)
        return stat
    }

    /// Everything `mlv show run` shows beyond the manifest.
    /// - Throws: `.damaged` for a missing environment, system or diff blob.
    public func runDetails(_ record: RunRecord) throws -> RunDetails {
        let m = record.manifest
        var duration: Int64?
        if let s = epochMilliseconds(m.started), let e = epochMilliseconds(m.ended) { duration = e - s }
        return RunDetails(record: record,
                          versionNames: try versionNames(for: Set(m.inputs.map(\.id) + m.outputs.compactMap(\.id)),
                                                         hints: m.inputs.compactMap(\.ref) + m.outputs.map { "\($0.kind):\($0.name)" }),
                          durationMilliseconds: duration, environment: try environment(of: record),
                          system: try systemSummary(of: record), diffStat: try diffStat(of: record))
    }
}

/// Gathers series lines (`MetricPoint`s) by metric name, in arrival order.
struct SeriesCollector {
    let run: String
    /// The blob or file the lines come from, for error messages.
    let source: String
    private var points: [String: [MetricPoint]] = [:]
    private var order: [String] = []
    private var lineNumber = 0

    init(run: String, source: String) {
        self.run = run
        self.source = source
    }

    mutating func take(_ line: [UInt8]) throws {
        lineNumber += 1
        if line.isEmpty { return }
        guard let point = try? MetricPoint(seriesLine: line) else {
            throw MLVError.damaged("run \(run): \(source) line \(lineNumber) is not a metric point")
        }
        if points[point.name] == nil { order.append(point.name) }
        points[point.name, default: []].append(point)
    }

    /// The series for `names` (all, in order of first arrival, when empty); metrics in
    /// `last` without points get an empty series.
    /// - Throws: `.notFound` naming a metric there is no series for.
    func histories(names: [String], last: [String: Double]) throws -> [MetricHistory] {
        var points = points, order = order
        for name in last.keys.sorted() where points[name] == nil {
            order.append(name)
            points[name] = []
        }
        let wanted = names.isEmpty ? order : names
        return try wanted.map { name in
            guard let p = points[name] else {
                throw MLVError.notFound("run \(run) has no metric '\(name)' (it has: \(order.isEmpty ? "none" : order.joined(separator: ", ")))")
            }
            let finite = p.map(\.value).filter(\.isFinite)
            return MetricHistory(name: name, points: p, min: finite.min(), max: finite.max(), last: p.last?.value ?? last[name])
        }
    }
}

/// One row of a metric table: a step (or, for points logged without one, a time) with
/// each requested metric's value there.
public struct MetricRow: Sendable, Equatable {
    public var step: Int64?
    /// The time of the first point in the row.
    public var time: String
    /// One value per series, in the order given; nil where that metric has no point.
    public var values: [Double?]
}

/// Lines up several series by step: one row per distinct step, ascending; points without
/// a step get a row each, after the stepped ones in arrival order. When a metric has
/// several points at one step, the last one is shown.
public func metricTable(_ series: [MetricHistory]) -> [MetricRow] {
    var byStep: [Int64: MetricRow] = [:]
    var unstepped: [MetricRow] = []
    for (column, s) in series.enumerated() {
        for p in s.points {
            if let step = p.step {
                var row = byStep[step] ?? MetricRow(step: step, time: p.time, values: Array(repeating: nil, count: series.count))
                if p.time < row.time { row.time = p.time }
                row.values[column] = p.value
                byStep[step] = row
            } else {
                var row = MetricRow(step: nil, time: p.time, values: Array(repeating: nil, count: series.count))
                row.values[column] = p.value
                unstepped.append(row)
            }
        }
    }
    return byStep.keys.sorted().map { byStep[$0]! } + unstepped.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }.map(\.element)
}

extension Repository {
    /// Stores in-memory blobs (chunked like any file) and commits them, for parts of a
    /// run (log, series, environment, system samples, diff) made outside `mlv run`.
    /// - Returns: the blob ids, in order.
    /// - Throws: store errors; nothing is committed then.
    public func storeBlobs(_ contents: [[UInt8]]) throws -> [ObjectID] {
        let guardLock = try lock(.shared)
        defer { withExtendedLifetime(guardLock) {} }
        let writer = objects.writer()
        do {
            let ids = try contents.map { try storeBlob($0, writer: writer) }
            try wrap { try writer.commit() }
            return ids
        } catch {
            writer.abort()
            throw error
        }
    }
}
