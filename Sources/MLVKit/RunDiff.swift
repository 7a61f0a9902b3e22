import MLVBasics
import MLVModel
import MLVStore

/// A named value on two sides; nil where a side does not have it.
public struct FieldChange: Sendable, Equatable {
    public var key: String
    public var old: String?
    public var new: String?

    public init(key: String, old: String?, new: String?) {
        self.key = key; self.old = old; self.new = new
    }

    /// `added`, `removed` or `changed`.
    public var kind: String { old == nil ? "added" : new == nil ? "removed" : "changed" }
}

/// One metric on two sides, with `new - old` when both have it.
public struct MetricChange: Sendable, Equatable {
    public var name: String
    public var old: Double?
    public var new: Double?
    public var delta: Double? {
        guard let old, let new else { return nil }
        return new - old
    }
}

/// The inputs of one role on two sides.
public struct InputComparison: Sendable, Equatable {
    public var role: String
    /// `NAME@vN#SPLIT` of each input, sorted.
    public var old: [String]
    public var new: [String]
    /// Whether both read exactly the same manifests and splits.
    public var same: Bool
}

/// How two environments differ.
public struct EnvironmentDiff: Sendable, Equatable {
    /// Which sides recorded an environment.
    public var oldRecorded: Bool
    public var newRecorded: Bool
    /// os, kernel, cpu, cores, memory, gpus, python. This and the lists below are empty
    /// unless both sides recorded an environment.
    public var fields: [FieldChange]
    public var variables: [FieldChange]
    /// Python packages by name, values are versions.
    public var packages: [FieldChange]

    public var isEmpty: Bool { fields.isEmpty && variables.isEmpty && packages.isEmpty && oldRecorded == newRecorded }

    init(_ a: RecordedEnvironment?, _ b: RecordedEnvironment?) {
        oldRecorded = a != nil
        newRecorded = b != nil
        guard let a, let b else {
            fields = []; variables = []; packages = []
            return
        }
        fields = changes(Dictionary(a.summaryFields, uniquingKeysWith: { x, _ in x }),
                         Dictionary(b.summaryFields, uniquingKeysWith: { x, _ in x }))
        variables = changes(a.variables, b.variables)
        func versions(_ e: RecordedEnvironment) -> [String: String] {
            var out: [String: String] = [:]
            for line in e.packages {
                if let r = line.firstRange(of: "==") { out[String(line[..<r.lowerBound])] = String(line[r.upperBound...]) }
                else if let r = line.firstRange(of: " @ ") { out[String(line[..<r.lowerBound])] = String(line[r.upperBound...]) }
                else { out[line] = "" }
            }
            return out
        }
        packages = changes(versions(a), versions(b))
    }
}

/// How two runs' code differs.
public struct CodeDiff: Sendable, Equatable {
    public var oldCommit: String?
    public var newCommit: String?
    public var oldDirty: Bool?
    public var newDirty: Bool?
    public var oldSnapshot: ObjectID?
    public var newSnapshot: ObjectID?
    /// Files that differ between the two snapshots (empty when either has none).
    public var files: [Change]

    public var isSame: Bool {
        oldCommit == newCommit && oldDirty == newDirty && oldSnapshot == newSnapshot
    }
}

/// `mlv diff run A B`.
public struct RunDiff: Sendable {
    public var old: RunRecord
    public var new: RunRecord
    /// Only params that differ.
    public var params: [FieldChange]
    /// Every metric either run has.
    public var metrics: [MetricChange]
    /// Every input role either run has.
    public var inputs: [InputComparison]
    public var environment: EnvironmentDiff
    public var code: CodeDiff
}

/// The keys whose values differ between `a` and `b`, sorted.
func changes(_ a: [String: String], _ b: [String: String]) -> [FieldChange] {
    Set(a.keys).union(b.keys).sorted().compactMap { k in
        a[k] == b[k] ? nil : FieldChange(key: k, old: a[k], new: b[k])
    }
}

/// Every metric of either side, sorted by name.
func metricChanges(_ a: [String: Double], _ b: [String: Double]) -> [MetricChange] {
    Set(a.keys).union(b.keys).sorted().map { MetricChange(name: $0, old: a[$0], new: b[$0]) }
}

extension Repository {
    /// Compares the inputs of two lists by role.
    func compareInputs(_ a: [Input], _ b: [Input]) throws -> [InputComparison] {
        let names = try versionNames(for: Set((a + b).map(\.id)), hints: (a + b).compactMap(\.ref))
        func key(_ i: Input) -> String { i.id.hex + "#" + (i.split ?? "") }
        return Set(a.map(\.role)).union(b.map(\.role)).sorted().map { role in
            let x = a.filter { $0.role == role }, y = b.filter { $0.role == role }
            func show(_ list: [Input]) -> [String] {
                list.map { (names[$0.id] ?? $0.ref ?? $0.id.short) + ($0.split.map { "#\($0)" } ?? "") }.sorted()
            }
            return InputComparison(role: role, old: show(x), new: show(y), same: Set(x.map(key)) == Set(y.map(key)))
        }
    }

    /// The files of a run's code snapshot as a tree id.
    func codeRoot(_ record: RunRecord) throws -> ObjectID? {
        guard let snapshot = record.manifest.code?.snapshot else { return nil }
        do {
            return try CodeManifest(json: try manifestJSON(snapshot)).root
        } catch MLVError.store(.missingObject) {
            throw MLVError.damaged("run \(record.run): its code snapshot \(snapshot.hex) is missing")
        } catch let e as ModelError {
            throw MLVError.damaged("run \(record.run): code snapshot \(snapshot.hex): \(e.message)")
        }
    }

    /// Compares the code of two runs, listing the files that differ between their snapshots.
    func compareCode(_ a: RunRecord, _ b: RunRecord) throws -> CodeDiff {
        let ca = a.manifest.code, cb = b.manifest.code
        var files: [Change] = []
        if let ra = try codeRoot(a), let rb = try codeRoot(b) { files = try diffTrees(ra, rb) }
        return CodeDiff(oldCommit: ca?.commit, newCommit: cb?.commit, oldDirty: ca?.dirty, newDirty: cb?.dirty,
                        oldSnapshot: ca?.snapshot, newSnapshot: cb?.snapshot, files: files)
    }

    /// What differs between two recorded runs: params, metrics (with deltas), inputs,
    /// environment (fields, variables, package versions) and code (commit, dirty, the
    /// files that differ between the two snapshots).
    /// - Throws: `findRun`'s errors; `.damaged` for a missing environment blob or snapshot.
    public func diffRuns(_ a: String, _ b: String) throws -> RunDiff {
        let ra = try findRun(a), rb = try findRun(b)
        let ma = ra.manifest, mb = rb.manifest
        return RunDiff(old: ra, new: rb, params: changes(ma.params, mb.params), metrics: metricChanges(ma.metrics, mb.metrics),
                       inputs: try compareInputs(ma.inputs, mb.inputs),
                       environment: EnvironmentDiff(try environment(of: ra), try environment(of: rb)),
                       code: try compareCode(ra, rb))
    }
}
