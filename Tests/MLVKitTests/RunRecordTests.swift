import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing

/// The run record layer: a run manifest round-trips, is found by id, prefix and name,
/// and keeps what it points at alive through gc.
@Suite struct RunRecordTests {
    func manifest(_ repo: Repository, run: String, name: String, params: [String: String] = [:],
                  log: ObjectID? = nil, inputs: [Input] = []) -> RunManifest {
        RunManifest(run: run, name: name, command: ["python", "train.py"], cwd: ".", started: "2026-11-27T01:00:00Z",
                    ended: "2026-11-27T01:00:05Z", status: .succeeded, exitCode: 0, params: params,
                    metrics: ["acc": 0.92, "loss": 0.31], inputs: inputs, log: log, author: "tester@example")
    }

    @Test func manifestRoundTripsAndFingerprintIgnoresInputOrder() throws {
        let a = ObjectID(hex: String(repeating: "a", count: 64))!, b = ObjectID(hex: String(repeating: "b", count: 64))!
        var m = RunManifest(run: "0123456789abcdef", name: "baseline", command: ["true"], cwd: ".",
                            started: "2026-11-27T01:00:00Z", ended: "2026-11-27T01:00:01Z", status: .killed,
                            signal: "SIGKILL", params: ["lr": "0.01"], metrics: ["acc": 0.5],
                            inputs: [Input(role: "train", id: a, split: "train"), Input(role: "eval", id: b)],
                            outputs: [RunOutput(kind: "model", name: "digits", path: "out/m.bin", id: nil, status: .missing)],
                            code: RunCode(commit: "abc", dirty: true, diff: a, snapshot: b), author: "me")
        let decoded = try RunManifest(json: try JSON.parse(m.canonicalBytes()))
        #expect(decoded == m)
        let fingerprint = m.fingerprint
        m.inputs.reverse()
        #expect(m.fingerprint == fingerprint)
        m.params["lr"] = "0.02"
        #expect(m.fingerprint != fingerprint)
    }

    @Test func editedParamsBreakTheStoredFingerprint() throws {
        let m = RunManifest(run: "0123456789abcdef", name: "x", command: [], cwd: ".", started: "", ended: "",
                            status: .succeeded, params: ["lr": "0.01"], author: "me")
        let text = String(decoding: m.canonicalBytes(), as: UTF8.self).split(separator: "0.01", omittingEmptySubsequences: false)
            .joined(separator: "0.02")
        #expect(throws: ModelError.self) { try RunManifest(json: try JSON.parse(Array(text.utf8))) }
    }

    @Test func recordedRunsAreFoundByIdPrefixAndName() throws {
        let t = try TestRepository()
        let repo = t.repository
        try repo.recordRun(manifest(repo, run: "aaaa000000000001", name: "baseline", params: ["lr": "0.1"]))
        try repo.recordRun(manifest(repo, run: "aaaa100000000002", name: "baseline", params: ["lr": "0.01"]))
        #expect(try repo.resolveRun("aaaa000000000001").manifest.params["lr"] == "0.1")
        #expect(try repo.resolveRun("aaaa1").run == "aaaa100000000002")
        #expect(try repo.resolveRun("baseline").run == "aaaa100000000002", "a name finds the newest run")
        expectMLVError({ if case .ambiguousPrefix = $0 { true } else { false } }, mentions: ["aaaa000000000001", "aaaa100000000002"]) {
            try repo.resolveRun("aaaa")
        }
        expectMLVError({ if case .unknownRef = $0 { true } else { false } }, mentions: ["nothing"]) {
            try repo.resolveRun("nothing")
        }
        expectMLVError({ if case .refused = $0 { true } else { false } }, mentions: ["aaaa000000000001"]) {
            try repo.recordRun(manifest(repo, run: "aaaa000000000001", name: "again"))
        }
        #expect(try repo.runs().map(\.run) == ["aaaa000000000001", "aaaa100000000002"])
    }

    @Test func gcKeepsWhatARunPointsAt() throws {
        let t = try TestRepository()
        let repo = t.repository
        let writer = repo.objects.writer()
        let log = try repo.storeBlob(Array("12:00:00 out hello\n".utf8), writer: writer)
        try writer.commit()
        try repo.recordRun(manifest(repo, run: "0000000000000001", name: "r", log: log))
        _ = try repo.gc(graceSeconds: 0, dryRun: false)
        #expect(repo.objects.info(log) != nil)
        #expect(repo.fsck(full: true).isClean)
    }
}
