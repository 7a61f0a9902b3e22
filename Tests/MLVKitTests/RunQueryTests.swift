import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `mlv runs`: where-expressions, sorting, active runs and "have we tried this already?".
@Suite struct RunQueryTests {
    /// Two versions of mnist (v2 differs in train only) and three runs on them.
    func repositoryWithRuns() throws -> (TestRepository, v1: ObjectID, v2: ObjectID) {
        let t = try TestRepository()
        try t.write("data", ["train/a": "1\n", "eval/b": "2\n"])
        let v1 = try t.add("mnist", "data") { $0.splits = ["train": "train", "eval": "eval"] }.id
        try t.write("data/train/a", .text("changed\n"))
        let v2 = try t.add("mnist", "data") { $0.splits = ["train": "train", "eval": "eval"] }.id
        let repo = t.repository
        try RunFixture.record(repo, run: "aaaa000000000001", name: "baseline", started: "2026-11-27T01:00:00Z",
                              ended: "2026-11-27T01:00:10Z", params: ["lr": "0.1", "epochs": "5"],
                              points: [("acc", 1, 0.80), ("loss", 1, 0.5)], inputs: [Input(role: "train", id: v1, split: "train")])
        try RunFixture.record(repo, run: "bbbb000000000002", name: "tuned", started: "2026-11-27T02:00:00Z",
                              ended: "2026-11-27T02:01:00Z", params: ["lr": "0.01", "epochs": "5"],
                              points: [("acc", 1, 0.93), ("loss", 1, 0.2)], inputs: [Input(role: "train", id: v2, split: "train")])
        try RunFixture.record(repo, run: "cccc000000000003", name: "broken", started: "2026-11-27T03:00:00Z",
                              ended: "2026-11-27T03:00:01Z", status: .failed, params: ["lr": "1e-3"],
                              inputs: [Input(role: "train", id: v2, split: "train")])
        return (t, v1, v2)
    }

    func ids(_ rows: [RunRow]) -> [String] { rows.map { String($0.run.prefix(4)) } }

    @Test(arguments: [
        ("params.lr<0.05", ["bbbb", "cccc"]),          // numeric: 1e-3 and 0.01 are below 0.05
        ("params.lr>=0.1", ["aaaa"]),
        ("metrics.acc>=0.9", ["bbbb"]),
        ("metrics.acc<0.9", ["aaaa"]),                  // a run without acc matches no condition
        ("name=baseline", ["aaaa"]),
        ("status!=failed", ["aaaa", "bbbb"]),
        ("inputs~mnist@v2", ["bbbb", "cccc"]),
        ("inputs~train=mnist@v1#train", ["aaaa"]),
        ("duration>30", ["bbbb"]),
        ("params.epochs=5.0", ["aaaa", "bbbb"]),       // both parse as numbers: 5 == 5.0
        ("name<c", ["aaaa", "cccc"]),                   // text: "baseline" and "broken" sort before "c"
    ])
    func whereExpressionsSelectRuns(expression: String, expected: [String]) throws {
        let (t, _, _) = try repositoryWithRuns()
        #expect(ids(try t.repository.queryRuns(where: [try RunFilter.parse(expression)])) == expected)
    }

    @Test(arguments: ["params.lr", "<0.5", "lr<0.5", "params.lr<>0.5", "status!failed", "params.=1", "nonsense=1", ""])
    func malformedExpressionsAreRefusedQuotingThem(expression: String) {
        expectMLVError({ if case .invalidArgument = $0 { true } else { false } }, mentions: ["'\(expression)'"]) {
            try RunFilter.parse(expression)
        }
    }

    @Test func sortingIsNumericWhenBothSidesAreNumbersAndPutsMissingValuesLast() throws {
        let (t, _, _) = try repositoryWithRuns()
        let repo = t.repository
        #expect(ids(try repo.queryRuns(sort: try RunSort.parse("-metrics.acc"))) == ["bbbb", "aaaa", "cccc"])
        #expect(ids(try repo.queryRuns(sort: try RunSort.parse("metrics.acc"))) == ["aaaa", "bbbb", "cccc"])
        #expect(ids(try repo.queryRuns(sort: try RunSort.parse("params.lr"))) == ["cccc", "bbbb", "aaaa"])
        #expect(ids(try repo.queryRuns(where: [try RunFilter.parse("status!=failed")], sort: try RunSort.parse("-started"),
                                       limit: 1)) == ["bbbb"])
        #expect(compareRunValues("10", "9") > 0 && compareRunValues("10", "9a") < 0)
        #expect(throws: MLVError.self) { try RunSort.parse("-bogus") }
    }

    @Test func activeRunsAreListedAsRunningOrAbandoned() throws {
        let (t, _, _) = try repositoryWithRuns()
        let repo = t.repository
        try RunFixture.active(repo, run: "dddd000000000004", name: "live")
        try RunFixture.active(repo, run: "eeee000000000005", name: "dead", pid: Int64(Int32.max))
        let rows = try repo.queryRuns(where: [try RunFilter.parse("started>2026-11-27T03:30")])
        #expect(rows.map(\.status) == ["running", "abandoned"])
        #expect(rows.map(\.name) == ["live", "dead"])
        guard case .active(let a) = try repo.locateRun("live") else { Issue.record("not found as active"); return }
        #expect(a.run == "dddd000000000004")
        expectMLVError({ if case .notFound = $0 { true } else { false } }, mentions: ["dddd000000000004", "running"]) {
            try repo.findRun("dddd")
        }
        expectMLVError({ if case .notFound = $0 { true } else { false } }, mentions: ["'zzz'"]) { try repo.locateRun("zzz") }
        // A name finds the newest run: one going on now wins over an earlier record, not over a later one.
        try RunFixture.active(repo, run: "abab000000000006", name: "baseline")
        guard case .active(let again) = try repo.locateRun("baseline") else { Issue.record("expected the live run"); return }
        #expect(again.run == "abab000000000006")
        #expect(try repo.findRun("baseline").run == "aaaa000000000001", "findRun wants a record")
        try RunFixture.active(repo, run: "abab000000000007", name: "tuned", started: "2026-11-27T01:00:00Z")
        guard case .recorded(let r) = try repo.locateRun("tuned") else { Issue.record("expected the record"); return }
        #expect(r.run == "bbbb000000000002")
    }

    @Test func triedListsParamCombinationsPerCodeSnapshotWithBestAndLast() throws {
        let (t, _, v2) = try repositoryWithRuns()
        let repo = t.repository
        let code = RunCode(commit: "abc", snapshot: v2)
        for (i, acc) in [0.91, 0.95, 0.90].enumerated() {
            try RunFixture.record(repo, run: "ffff00000000000\(i)", name: "again", started: "2026-11-27T05:0\(i):00Z",
                                  params: ["lr": "0.01", "epochs": "5"], points: [("acc", nil, acc), ("loss", nil, 1 - acc)],
                                  inputs: [Input(role: "train", id: v2, split: "train")], code: code)
        }
        let (ref, combos) = try repo.triedCombinations(on: "mnist@v2#train")
        #expect(ref.display == "mnist@v2#train")
        #expect(combos.count == 3)
        let first = combos[0]
        #expect(first.code == v2 && first.commit == "abc")
        #expect(first.runs == ["ffff000000000000", "ffff000000000001", "ffff000000000002"])
        #expect(first.best["acc"] == 0.95 && first.last["acc"] == 0.90)
        #expect(abs(first.best["loss"]! - 0.05) < 1e-12, "loss: lower is better")
        #expect(combos.map { $0.params["lr"] } == ["0.01", "1e-3", "0.01"], "newest group first; no-code groups apart")
        #expect(try repo.triedCombinations(on: "mnist@v1").1.map(\.runs) == [["aaaa000000000001"]])
        #expect(try repo.triedCombinations(on: "mnist@v1#eval").1.isEmpty)
    }

    @Test func versionNamesUseHintsFirstAndFallBackToEveryRef() throws {
        let (t, v1, v2) = try repositoryWithRuns()
        try t.write("other", ["x": "x\n"])
        let other = try t.add("other", "other").id
        let repo = t.repository
        let expected: [ObjectID: String] = [v1: "mnist@v1", v2: "mnist@v2", other: "other@v1"]
        #expect(try repo.versionNames(for: Set(expected.keys)) == expected)
        #expect(try repo.versionNames(for: Set(expected.keys), hints: ["mnist@v1#train", "dataset:other", "nope@v3", "%bad"]) == expected)
        #expect(try repo.versionNames(for: [other], hints: ["mnist@v2"]) == [other: "other@v1"], "a wrong hint costs a walk")
        #expect(try repo.versionNames(for: []).isEmpty)
    }
}
