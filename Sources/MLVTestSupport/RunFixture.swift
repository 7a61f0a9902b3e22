import MLVBasics
import MLVKit
import MLVModel
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// Hand-made runs and model versions for tests of the run commands, in exactly the
/// formats `mlv run` records (see docs/design.md, "Run manifest").
public enum RunFixture {
    /// One metric point: name, optional step, value.
    public typealias Point = (name: String, step: Int64?, value: Double)

    /// A metric series blob: JSON lines `{"name","step"?,"time","value"}`, one second apart
    /// from `started`'s minute.
    public static func seriesLines(_ points: [Point], minute: String = "2026-11-27T01:00") -> [UInt8] {
        points.enumerated().flatMap { i, p in
            MetricPoint(name: p.name, step: p.step, time: "\(minute):\(i % 60 < 10 ? "0" : "")\(i % 60).000Z", value: p.value).line
        }
    }

    /// An `mlv.environment/1` blob.
    public static func environment(python: String = "3.11.4", packages: [String] = ["numpy==1.26.4"],
                                   variables: [String: String] = ["HOME": "/home/t"]) -> [UInt8] {
        JSON.object([
            "schema": .string("mlv.environment/1"), "os": .string("Linux"), "kernel": .string("6.1.0"),
            "cpu": .object(["model": .string("Test CPU"), "cores": .int(2)]), "memory": .int(8 << 30), "gpus": .array([]),
            "python": .object(["version": .string(python), "packages": .array(packages.map { .string($0) })]),
            "variables": .object(variables.mapValues { .string($0) }),
        ]).canonicalBytes()
    }

    /// Records a finished run whose blobs are stored first; `metrics` holds each series'
    /// last value. Returns the run record.
    @discardableResult
    public static func record(_ repo: Repository, run: String, name: String, started: String = "2026-11-27T01:00:00.000Z",
                              ended: String = "2026-11-27T01:00:05.500Z", status: RunStatus = .succeeded,
                              params: [String: String] = [:], points: [Point] = [], inputs: [Input] = [],
                              outputs: [RunOutput] = [], log: String? = nil, environment: [UInt8]? = nil,
                              system: String? = nil, code: RunCode? = nil) throws -> RunRecord {
        var blobs: [[UInt8]] = []
        func slot(_ bytes: [UInt8]?) -> Int? {
            guard let bytes else { return nil }
            blobs.append(bytes)
            return blobs.count - 1
        }
        let s = slot(points.isEmpty ? nil : seriesLines(points)), l = slot(log.map { Array($0.utf8) })
        let e = slot(environment), y = slot(system.map { Array($0.utf8) })
        let ids = try repo.storeBlobs(blobs)
        var metrics: [String: Double] = [:]
        for p in points { metrics[p.name] = p.value }
        let m = RunManifest(run: run, name: name, command: ["python", "train.py"], cwd: ".", started: started, ended: ended,
                            status: status, exitCode: status == .succeeded ? 0 : 1, params: params, metrics: metrics,
                            series: s.map { ids[$0] }, inputs: inputs, outputs: outputs, code: code,
                            environment: e.map { ids[$0] }, log: l.map { ids[$0] }, system: y.map { ids[$0] },
                            author: "tester@example")
        try repo.recordRun(m)
        return try repo.resolveRun(run)
    }

    /// Creates the next version of model `name` whose manifest names `run` (nil: no run),
    /// reusing the tree of `root` (any stored tree). Returns the version number.
    @discardableResult
    public static func model(_ repo: Repository, name: String, root: ObjectID, run: String?, inputs: [Input] = []) throws -> Int {
        let m = ModelManifest(name: name, root: root, files: 1, bytes: 3, inputs: inputs, message: "", meta: [:],
                              author: "tester@example", created: "2026-11-27T01:00:00Z", source: "out/model.bin", run: run)
        let bytes = m.canonicalBytes()
        let id = SHA256.hash(bytes)
        let writer = repo.objects.writer()
        _ = try bytes.withUnsafeBytes { try writer.put(id, kind: .manifest, bytes: $0, compression: .always) }
        try writer.commit()
        return try repo.refs.createNextVersion(kind: "model", name: name, id: id)
    }

    /// Makes `.mlv/active/<run>/` with a `state` as `mlv run` writes it while running, on
    /// this host with `pid` (default: this process, so it counts as running). Returns the
    /// directory.
    @discardableResult
    public static func active(_ repo: Repository, run: String, name: String, pid: Int64 = Int64(getpid()),
                              started: String = "2026-11-27T04:00:00.000Z") throws -> String {
        let dir = repo.storePath + "/active/" + run
        try FS.makeDirectories(dir)
        try FS.atomicWrite(dir + "/state", JSON.object([
            "run": .string(run), "name": .string(name), "command": .array([.string("sleep")]), "cwd": .string("."),
            "started": .string(started), "pid": .int(pid), "host": .string(hostName()),
        ]).canonicalBytes())
        return dir
    }
}
