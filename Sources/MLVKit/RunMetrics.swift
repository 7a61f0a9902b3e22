import MLVBasics
import MLVModel
#if canImport(Glibc)
import Glibc
#endif

/// One point of a metric series, as stored in a run's `series` blob:
/// `{"name":"loss","step":3,"time":"2026-11-27T01:00:00.123Z","value":0.4}`.
public struct MetricPoint: Sendable, Equatable {
    public var name: String
    public var step: Int64?
    public var time: String
    public var value: Double

    public init(name: String, step: Int64? = nil, time: String, value: Double) {
        self.name = name; self.step = step; self.time = time; self.value = value
    }

    /// The canonical JSON line, newline included.
    public var line: [UInt8] {
        var o: [String: JSON] = ["name": .string(name), "time": .string(time), "value": .metric(value)]
        if let step { o["step"] = .int(step) }
        return JSON.object(o).canonicalBytes() + [10]
    }

    /// Decodes one line of a series blob.
    /// - Throws: `MLVError.damaged` when the line is not a metric point.
    public init(seriesLine bytes: [UInt8]) throws {
        guard let json = try? JSON.parse(bytes), let name = json["name"]?.string, let time = json["time"]?.string,
              let value = json["value"].flatMap({ $0.isNull ? Double.nan : $0.double }) else {
            throw MLVError.damaged("metric series line is not {name, time, value, step?}: \(String(decoding: bytes.prefix(200), as: UTF8.self))")
        }
        self.init(name: name, step: json["step"]?.int, time: time, value: value)
    }
}

extension JSON {
    /// A measured number: an integer when it is one exactly (`50`, not `50.0`), else
    /// `number` (null for NaN and infinities).
    static func metric(_ d: Double) -> JSON {
        d == d.rounded() && abs(d) < 9_007_199_254_740_992 ? .int(Int64(d)) : .number(d)
    }
}

/// A metric input line that could not be used: which file, which line, why.
public struct MetricLineProblem: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var reason: String

    public var description: String { "\(file):\(line): \(reason)" }
}

/// The metric input format: JSON lines such as `{"step": 3, "loss": 0.4, "acc": 0.9}`,
/// where every numeric member except `step` and `time` is a metric, `step` (optional)
/// is an integer, and `time` (optional) an RFC 3339 time.
public enum MetricLines {
    /// The points one input line holds (`arrival` is their time unless the line has
    /// one), or why the line is not a JSON object of numbers.
    public static func parse(_ bytes: [UInt8], arrival: String) -> Result<[MetricPoint], Reason> {
        let json: JSON
        do { json = try JSON.parse(bytes) } catch { return .failure(Reason("not JSON (\(error.message) at byte \(error.offset))")) }
        guard let object = json.object else { return .failure(Reason("not a JSON object")) }
        var step: Int64?
        if let s = object["step"] {
            guard let i = s.int ?? s.double.flatMap({ $0 == $0.rounded() && abs($0) < 9e15 ? Int64($0) : nil }) else {
                return .failure(Reason("'step' is not an integer"))
            }
            step = i
        }
        var time = arrival
        if let t = object["time"] {
            guard let text = t.string else { return .failure(Reason("'time' is not a string")) }
            time = text
        }
        var points: [MetricPoint] = []
        for (name, value) in object.sorted(by: { $0.key < $1.key }) where name != "step" && name != "time" {
            guard let v = value.double else { return .failure(Reason("metric '\(name)' is not a number")) }
            points.append(MetricPoint(name: name, step: step, time: time, value: v))
        }
        if points.isEmpty { return .failure(Reason("no metric in the line")) }
        return .success(points)
    }

    /// Why a line was refused.
    public struct Reason: Error, Sendable, Equatable, CustomStringConvertible {
        public var text: String
        init(_ text: String) { self.text = text }
        public var description: String { text }
    }

    /// The line `mlv log metric loss=0.3 --step 4` appends: `{"loss":0.3,"step":4,"time":..}`.
    public static func encode(_ metrics: [(name: String, value: Double)], step: Int64?, time: String) -> [UInt8] {
        var o: [String: JSON] = ["time": .string(time)]
        for m in metrics { o[m.name] = .metric(m.value) }
        if let step { o["step"] = .int(step) }
        return JSON.object(o).canonicalBytes() + [10]
    }

    /// Parses `NAME=VALUE` arguments of `mlv log metric`.
    /// - Throws: `MLVError.invalidArgument` naming the bad argument.
    public static func parseAssignments(_ items: [String]) throws -> [(name: String, value: Double)] {
        var out: [(String, Double)] = []
        for item in items {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw MLVError.invalidArgument("metric '\(item)': expected NAME=VALUE")
            }
            let name = String(item[..<eq]), text = String(item[item.index(after: eq)...])
            guard name != "step", name != "time" else {
                throw MLVError.invalidArgument("metric name '\(name)' is reserved (use --step)")
            }
            guard let v = Double(text), v.isFinite else {
                throw MLVError.invalidArgument("metric '\(name)': '\(text)' is not a finite number")
            }
            if out.contains(where: { $0.0 == name }) { throw MLVError.invalidArgument("metric '\(name)' given twice") }
            out.append((name, v))
        }
        if out.isEmpty { throw MLVError.invalidArgument("no metric given (NAME=VALUE)") }
        return out
    }

    /// Appends one line to the metrics file of the run this process is inside
    /// (`MLV_METRICS_FILE`), with `O_APPEND` so concurrent writers never interleave.
    /// - Throws: `MLVError.invalidArgument` outside `mlv run`; `.store(.io)` on write failure.
    public static func appendToCurrentRun(_ metrics: [(name: String, value: Double)], step: Int64?) throws -> String {
        guard let run = getenv("MLV_RUN_ID").map({ String(cString: $0) }), !run.isEmpty,
              let file = getenv("MLV_METRICS_FILE").map({ String(cString: $0) }), !file.isEmpty else {
            throw MLVError.invalidArgument("not inside 'mlv run': MLV_RUN_ID and MLV_METRICS_FILE are not set")
        }
        let line = encode(metrics, step: step, time: Timestamp.nowMilliseconds())
        try wrap {
            let fd = try FS.open(file, O_WRONLY | O_APPEND | O_CLOEXEC)
            defer { FS.close(fd) }
            try FS.writeAll(fd, line, path: file)
        }
        return run
    }
}

/// Collects metric points from input lines: writes the series blob's lines to a file as
/// they come and keeps the last value per name.
final class MetricSeries {
    private let out: FileAppender
    private(set) var last: [String: Double] = [:]
    private(set) var points = 0
    private(set) var problems: [MetricLineProblem] = []

    init(path: String) throws {
        out = try FileAppender(path: path)
    }

    var path: String { out.path }

    /// Takes one input line (without its newline) from `file`, line number `number`.
    func take(_ line: [UInt8], file: String, number: Int, arrival: String) throws {
        if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { return }
        switch MetricLines.parse(line, arrival: arrival) {
        case .success(let list):
            for p in list {
                try out.append(p.line)
                last[p.name] = p.value
                points += 1
            }
        case .failure(let reason):
            problems.append(MetricLineProblem(file: file, line: number, reason: reason.text))
        }
    }

    /// Writes buffered points to the file.
    func flush() throws { try out.flush() }

    func close() throws { try out.close() }
}

/// Follows a file another process appends JSON lines to, handing complete lines on
/// (split by `LineSplitter`) with their line numbers.
final class LineTail {
    let path: String
    private var offset = 0
    private var splitter = LineSplitter()
    private(set) var lineNumber = 0

    init(path: String) { self.path = path }

    /// Reads what was appended since the last call; `final` also hands on a last line
    /// without a newline.
    func poll(final: Bool = false, _ body: ([UInt8], Int) throws -> Void) throws {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            defer { Glibc.close(fd) }
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try FS.pread(fd, into: $0, at: offset, path: path) }
                if n <= 0 { break }
                offset += n
                try buffer.withUnsafeBytes { bytes in
                    try splitter.feed(UnsafeRawBufferPointer(rebasing: bytes[..<n])) { line in
                        lineNumber += 1
                        try body(line, lineNumber)
                    }
                }
            }
        }
        if final {
            try splitter.finish { line in
                lineNumber += 1
                try body(line, lineNumber)
            }
        }
    }
}

/// Appends to a file through a buffer (written in blocks through `FS`).
final class FileAppender {
    let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var closed = false

    init(path: String) throws {
        self.path = path
        fd = try wrap { try FS.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o644) }
        buffer.reserveCapacity(1 << 18)
    }

    func append(_ bytes: [UInt8]) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 18 { try flush() }
    }

    func append(_ bytes: UnsafeRawBufferPointer) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 18 { try flush() }
    }

    /// Writes `bytes` through at once (after anything buffered), without copying them.
    func write(_ bytes: [UInt8]) throws {
        try flush()
        try bytes.withUnsafeBytes { b in try wrap { try FS.writeAll(fd, b, path: path) } }
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { b in try wrap { try FS.writeAll(fd, b, path: path) } }
        buffer.removeAll(keepingCapacity: true)
    }

    func close() throws {
        guard !closed else { return }
        closed = true
        defer { FS.close(fd) }
        try flush()
    }

    deinit { if !closed { FS.close(fd) } }
}
