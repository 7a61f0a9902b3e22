import MLVBasics
import MLVModel
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// A run that `mlv run` is executing (or was, until its process died): a directory
/// `.mlv/active/<run id>/` holding `state`, `log`, `metrics.jsonl` and `system.jsonl`.
public struct ActiveRun: Sendable {
    /// Whether the process that writes the directory is still there.
    public enum Liveness: String, Sendable {
        /// Its pid is alive on this host, or it runs on another host (cannot be checked).
        case running
        /// Its pid is dead on this host, or its `state` cannot be read: nobody will finish it.
        case abandoned
    }

    public var run: String
    public var name: String
    public var command: [String]
    public var cwd: String
    public var started: String
    public var pid: Int64?
    public var host: String
    public var liveness: Liveness
    /// `.mlv/active/<run id>`.
    public var directory: String
}

/// One row of `mlv runs`: a recorded run, or an active one (then `record` is nil).
public struct RunRow: Sendable {
    public var run: String
    public var name: String
    /// `succeeded`, `failed`, `interrupted`, `killed`, `running` or `abandoned`.
    public var status: String
    public var started: String
    /// Milliseconds from start to end; nil while running or when a time does not parse.
    public var durationMilliseconds: Int64?
    public var params: [String: String]
    public var metrics: [String: Double]
    /// Each input as `ROLE=NAME@vN#SPLIT` (the version found by reverse lookup of version
    /// refs; the manifest id's prefix when no version ref points at it).
    public var inputs: [String]
    public var record: RunRecord?
    public var active: ActiveRun?
}

/// A field of a run that `--where` and `--sort` name: `params.lr`, `metrics.acc`,
/// `meta.KEY`, or one of `id`, `name`, `status`, `started`, `ended`, `duration`,
/// `inputs`, `command`, `author`, `message`, `fingerprint`, `exit`.
public enum RunField: Sendable, Equatable {
    case param(String), metric(String), meta(String)
    case id, name, status, started, ended, duration, inputs, command, author, message, fingerprint, exit

    static let plain: [String: RunField] = [
        "id": .id, "run": .id, "name": .name, "status": .status, "started": .started, "ended": .ended,
        "duration": .duration, "inputs": .inputs, "command": .command, "author": .author, "message": .message,
        "fingerprint": .fingerprint, "exit": .exit,
    ]

    /// Parses a field name.
    /// - Throws: `MLVError.invalidArgument` naming it when it is not a known field.
    public static func parse(_ text: String) throws -> RunField {
        for (prefixes, make) in [(["params.", "param."], RunField.param), (["metrics.", "metric."], RunField.metric),
                                 (["meta."], RunField.meta)] as [([String], (String) -> RunField)] {
            for p in prefixes where text.hasPrefix(p) && text.count > p.count { return make(String(text.dropFirst(p.count))) }
        }
        guard let f = plain[text] else {
            throw MLVError.invalidArgument("unknown run field '\(text)' (use params.NAME, metrics.NAME, meta.KEY or one of \(plain.keys.sorted().joined(separator: ", ")))")
        }
        return f
    }

    /// The field's value in `row` as text (numbers in their shortest round-trip form,
    /// durations in seconds); nil when the run has no such field.
    public func value(in row: RunRow) -> String? {
        let m = row.record?.manifest
        switch self {
        case .param(let k): return row.params[k]
        case .metric(let k): return row.metrics[k].map { "\($0)" }
        case .meta(let k): return m?.meta[k]
        case .id: return row.run
        case .name: return row.name
        case .status: return row.status
        case .started: return row.started
        case .ended: return m?.ended
        case .duration: return row.durationMilliseconds.map { "\(Double($0) / 1000)" }
        case .inputs: return row.inputs.joined(separator: " ")
        case .command: return (m?.command ?? row.active?.command)?.joined(separator: " ")
        case .author: return m?.author
        case .message: return m?.message
        case .fingerprint: return m?.fingerprint.hex
        case .exit: return m?.exitCode.map { "\($0)" }
        }
    }
}

/// Compares two field values: as numbers when both parse as finite numbers, else as
/// strings by their UTF-8 bytes.
public func compareRunValues(_ a: String, _ b: String) -> Int {
    if let x = Double(a), let y = Double(b), x.isFinite, y.isFinite {
        return x < y ? -1 : x > y ? 1 : 0
    }
    return a == b ? 0 : utf8Less(a, b) ? -1 : 1
}

/// One `--where` condition: FIELD OP VALUE with OP one of `= != < <= > >= ~` (contains).
public struct RunFilter: Sendable, Equatable {
    public enum Operator: String, Sendable, CaseIterable {
        case equal = "=", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
        case contains = "~"
    }

    public var field: RunField
    public var op: Operator
    public var value: String

    /// Parses `params.lr<0.05`, `status!=failed`, `inputs~mnist@v2`, ...
    /// - Throws: `MLVError.invalidArgument` quoting the expression when it has no field,
    ///   no operator or an unknown field.
    public static func parse(_ text: String) throws -> RunFilter {
        let bytes = Array(text.utf8)
        let opChars: Set<UInt8> = [UInt8(ascii: "!"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "="), UInt8(ascii: "~")]
        guard let at = bytes.firstIndex(where: { opChars.contains($0) }), at > 0 else {
            throw MLVError.invalidArgument("malformed --where expression '\(text)': expected FIELD OP VALUE with OP one of = != < <= > >= ~")
        }
        let rest = bytes[at...]
        let op: Operator
        if rest.count >= 2, let two = Operator(rawValue: String(decoding: rest.prefix(2), as: UTF8.self)) {
            op = two
        } else if let one = Operator(rawValue: String(decoding: rest.prefix(1), as: UTF8.self)) {
            op = one
        } else {
            throw MLVError.invalidArgument("malformed --where expression '\(text)': '!' must be followed by '='")
        }
        let value = String(decoding: rest.dropFirst(op.rawValue.utf8.count), as: UTF8.self)
        if let next = value.utf8.first, opChars.contains(next), op != .contains {
            throw MLVError.invalidArgument("malformed --where expression '\(text)': unknown operator")
        }
        let field: RunField
        do { field = try RunField.parse(String(decoding: bytes[..<at], as: UTF8.self)) } catch let e as MLVError {
            throw MLVError.invalidArgument("malformed --where expression '\(text)': \(e)")
        }
        return RunFilter(field: field, op: op, value: value)
    }

    /// Whether `row` satisfies the condition; a run without the field never does.
    public func matches(_ row: RunRow) -> Bool {
        guard let v = field.value(in: row) else { return false }
        switch op {
        case .contains: return v.contains(value)
        case .equal: return compareRunValues(v, value) == 0
        case .notEqual: return compareRunValues(v, value) != 0
        case .less: return compareRunValues(v, value) < 0
        case .lessOrEqual: return compareRunValues(v, value) <= 0
        case .greater: return compareRunValues(v, value) > 0
        case .greaterOrEqual: return compareRunValues(v, value) >= 0
        }
    }
}

/// `--sort [-]FIELD`: ascending, or descending with a leading `-`. Runs without the field
/// come last either way.
public struct RunSort: Sendable, Equatable {
    public var field: RunField
    public var descending: Bool

    /// - Throws: `MLVError.invalidArgument` for an unknown field.
    public static func parse(_ text: String) throws -> RunSort {
        let descending = text.hasPrefix("-")
        return RunSort(field: try RunField.parse(descending ? String(text.dropFirst()) : text), descending: descending)
    }

    /// Sorts stably by the field.
    public func sorted(_ rows: [RunRow]) -> [RunRow] {
        let keyed = rows.enumerated().map { ($0.offset, field.value(in: $0.element), $0.element) }
        return keyed.sorted { a, b in
            switch (a.1, b.1) {
            case (nil, nil): return a.0 < b.0
            case (nil, _): return false
            case (_, nil): return true
            case let (x?, y?):
                let c = compareRunValues(x, y)
                return c == 0 ? a.0 < b.0 : (descending ? c > 0 : c < 0)
            }
        }.map(\.2)
    }
}

/// A parameter combination already tried on some data with one code snapshot.
public struct TriedCombination: Sendable {
    /// The code snapshot (nil: runs recorded without one).
    public var code: ObjectID?
    /// The git commit of the newest run in the group, when known.
    public var commit: String?
    public var params: [String: String]
    /// Run ids, oldest first.
    public var runs: [String]
    public var statuses: [String]
    /// Each metric's value in the newest run that has it.
    public var last: [String: Double]
    /// Each metric's best value over the runs (lowest for loss/error-like names, else highest).
    public var best: [String: Double]
}

/// Whether a lower value of the metric is better: names containing loss, err, mse, mae,
/// rmse, perplexity, time or latency.
public func lowerIsBetter(_ metric: String) -> Bool {
    let m = metric.lowercased()
    return ["loss", "err", "mse", "mae", "perplexity", "time", "latency"].contains { m.contains($0) }
}

/// Parses an RFC 3339 UTC time with optional fractional seconds into milliseconds since
/// the epoch; nil when it does not parse.
func epochMilliseconds(_ text: String) -> Int64? {
    guard let dot = text.firstIndex(of: "."), text.hasSuffix("Z") else { return Timestamp.parse(text).map { $0 * 1000 } }
    let fraction = text[text.index(after: dot)..<text.index(before: text.endIndex)]
    guard !fraction.isEmpty, fraction.allSatisfy(\.isASCII), fraction.allSatisfy(\.isNumber),
          let seconds = Timestamp.parse(String(text[..<dot]) + "Z") else { return nil }
    let millis = Int64(String((fraction + "00").prefix(3)))!
    return seconds * 1000 + millis
}

extension Repository {
    var activePath: String { storePath + "/active" }

    /// Runs being executed now (or abandoned): the directories under `.mlv/active/`,
    /// oldest start first. A directory whose `state` cannot be read is abandoned.
    /// - Throws: `MLVError.store(.io)` when the directory cannot be listed.
    public func activeRuns() throws -> [ActiveRun] {
        guard FS.isDirectory(activePath) else { return [] }
        let here = hostName()
        return try wrap { try FS.listDirectory(activePath) }.filter { RunManifest.isRunID($0.name) }.map { entry in
            let dir = activePath + "/" + entry.name
            guard let bytes = try? FS.readFile(dir + "/state"), let json = try? JSON.parse(bytes) else {
                return ActiveRun(run: entry.name, name: "", command: [], cwd: "", started: "", pid: nil, host: "",
                                 liveness: .abandoned, directory: dir)
            }
            let host = json["host"]?.string ?? ""
            let pid = json["pid"]?.int
            var alive = host != here
            if !alive, let pid, pid > 0, pid <= Int64(Int32.max) {
                alive = kill(pid_t(pid), 0) == 0 || errno == EPERM
            }
            return ActiveRun(run: entry.name, name: json["name"]?.string ?? "",
                             command: json["command"]?.array?.compactMap(\.string) ?? [], cwd: json["cwd"]?.string ?? "",
                             started: json["started"]?.string ?? "", pid: pid, host: host,
                             liveness: alive ? .running : .abandoned, directory: dir)
        }.sorted { ($0.started, $0.run) < ($1.started, $1.run) }
    }

    /// `KIND:NAME@vN` (no kind for datasets) for each manifest id that a version ref
    /// points at (the first version when several do); ids no version ref points at are
    /// absent. The names in `hints` (refs as typed, `mnist@v2`) are looked in first, so
    /// the walk over every version ref happens only for ids they do not explain.
    public func versionNames(for ids: Set<ObjectID>, hints: [String] = []) throws -> [ObjectID: String] {
        var found: [ObjectID: String] = [:]
        func look(_ kind: ArtifactKind, _ name: String) throws {
            for v in try wrap({ try refs.versions(kind: kind.rawValue, name: name) }) where ids.contains(v.id) && found[v.id] == nil {
                found[v.id] = (kind == .dataset ? "" : "\(kind.rawValue):") + "\(name)@v\(v.number)"
            }
        }
        var looked = Set<String>()
        for hint in hints {
            guard let spec = try? RefSpec.parse(hint) else { continue }
            for kind in ArtifactKind.allCases where spec.kind == nil || spec.kind == kind.rawValue {
                if looked.insert(kind.rawValue + ":" + spec.name).inserted { try look(kind, spec.name) }
            }
        }
        guard found.count < ids.count else { return found }
        for kind in ArtifactKind.allCases {
            for name in try wrap({ try refs.names(kind: kind.rawValue) }) where !looked.contains(kind.rawValue + ":" + name) {
                try look(kind, name)
                if found.count == ids.count { return found }
            }
        }
        return found
    }

    /// An input as `ROLE=NAME@vN#SPLIT` using `names` from `versionNames(for:)`.
    func inputDisplay(_ input: Input, _ names: [ObjectID: String]) -> String {
        "\(input.role)=\(names[input.id] ?? input.ref ?? input.id.short)" + (input.split.map { "#\($0)" } ?? "")
    }

    /// Every run as a row of `mlv runs`, recorded ones then active ones, each oldest
    /// start first; a run that is both (recorded a moment ago) is listed once, recorded.
    /// - Throws: store errors; a damaged run record is an error.
    public func runRows() throws -> [RunRow] {
        let records = try runs()
        let inputs = records.flatMap(\.manifest.inputs)
        let names = try versionNames(for: Set(inputs.map(\.id)), hints: inputs.compactMap(\.ref))
        var rows = records.map { r -> RunRow in
            let m = r.manifest
            var duration: Int64?
            if let s = epochMilliseconds(m.started), let e = epochMilliseconds(m.ended) { duration = e - s }
            return RunRow(run: r.run, name: m.name, status: m.status.rawValue, started: m.started,
                          durationMilliseconds: duration, params: m.params, metrics: m.metrics,
                          inputs: m.inputs.map { inputDisplay($0, names) }, record: r, active: nil)
        }
        let recorded = Set(records.map(\.run))
        for a in try activeRuns() where !recorded.contains(a.run) {
            rows.append(RunRow(run: a.run, name: a.name, status: a.liveness.rawValue, started: a.started,
                               durationMilliseconds: nil, params: [:], metrics: [:], inputs: [], record: nil, active: a))
        }
        return rows
    }

    /// `mlv runs`: the rows that satisfy every filter, sorted, at most `limit` of them.
    /// - Throws: store errors.
    public func queryRuns(where filters: [RunFilter] = [], sort: RunSort? = nil, limit: Int? = nil) throws -> [RunRow] {
        var rows = try runRows().filter { row in filters.allSatisfy { $0.matches(row) } }
        if let sort { rows = sort.sorted(rows) }
        if let limit { rows = Array(rows.prefix(max(0, limit))) }
        return rows
    }

    /// "Have we tried this already?": the parameter combinations of recorded runs that read
    /// `ref` (a dataset version, optionally `#SPLIT`: then only runs that read that split),
    /// grouped by code snapshot, newest group first.
    /// - Throws: `MLVError.unknownRef` / `.unknownSplit` for the ref; store errors.
    public func triedCombinations(on ref: String) throws -> (Resolved, [TriedCombination]) {
        let r = try resolve(ref)
        var groups: [String: TriedCombination] = [:]
        var order: [String] = []
        for record in try runs() {
            let m = record.manifest
            guard m.inputs.contains(where: { $0.id == r.id && (r.split == nil || $0.split == r.split) }) else { continue }
            let paramsKey = String(decoding: JSON.object(m.params.mapValues { .string($0) }).canonicalBytes(), as: UTF8.self)
            let key = (m.code?.snapshot?.hex ?? "-") + " " + paramsKey
            var g = groups[key] ?? TriedCombination(code: m.code?.snapshot, commit: nil, params: m.params, runs: [],
                                                    statuses: [], last: [:], best: [:])
            g.runs.append(record.run)
            g.statuses.append(m.status.rawValue)
            g.commit = m.code?.commit ?? g.commit
            for (k, v) in m.metrics where !v.isNaN {
                g.last[k] = v
                if let b = g.best[k] { g.best[k] = lowerIsBetter(k) ? min(b, v) : max(b, v) } else { g.best[k] = v }
            }
            groups[key] = g
            order.removeAll { $0 == key }
            order.append(key)
        }
        return (r, order.reversed().map { groups[$0]! })
    }
}
