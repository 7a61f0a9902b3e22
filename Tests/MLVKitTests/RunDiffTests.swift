import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing

/// `mlv diff run A B` and `mlv compare A B`.
@Suite struct RunDiffTests {
    /// A code snapshot of `files` written under `src/` (made through `add --code`).
    func snapshot(_ t: TestRepository, _ files: KeyValuePairs<String, ScenarioEntry>, tag: String) throws -> ObjectID {
        t.remove("src")
        try t.write("src", files)
        try t.write("holder-\(tag)", ["x": .text(tag)])
        let paths = files.map { t.path("src/" + $0.key) }
        let r = try t.add("holder-\(tag)", "holder-\(tag)") { $0.code = paths }
        return try t.repository.datasetManifest(r.id).inputs.first { $0.role == "code" }!.id
    }

    @Test func diffShowsParamsMetricsInputsEnvironmentAndCodeFiles() throws {
        let t = try TestRepository()
        try t.write("data", ["train/a": "1\n", "eval/b": "2\n"])
        let v1 = try t.add("mnist", "data") { $0.splits = ["train": "train", "eval": "eval"] }.id
        try t.write("data/train/a", .text("changed\n"))
        let v2 = try t.add("mnist", "data") { $0.splits = ["train": "train", "eval": "eval"] }.id
        let codeA = try snapshot(t, ["train.py": "print(1)\n", "util.py": "x = 1\n"], tag: "a")
        let codeB = try snapshot(t, ["train.py": "print(2)\n", "util.py": "x = 1\n", "new.py": "y\n"], tag: "b")
        let repo = t.repository
        try RunFixture.record(repo, run: "aaaa000000000001", name: "one", params: ["lr": "0.1", "momentum": "0.9"],
                              points: [("acc", 1, 0.5), ("loss", 1, 0.8)],
                              inputs: [Input(role: "train", id: v1, split: "train"), Input(role: "eval", id: v1, split: "eval")],
                              environment: RunFixture.environment(packages: ["numpy==1.26.0", "torch==2.1.0"], variables: ["SEED": "1"]),
                              code: RunCode(commit: "c1", dirty: false, snapshot: codeA))
        try RunFixture.record(repo, run: "bbbb000000000002", name: "two", params: ["lr": "0.01", "epochs": "3"],
                              points: [("acc", 1, 0.75)],
                              inputs: [Input(role: "train", id: v2, split: "train"), Input(role: "eval", id: v1, split: "eval")],
                              environment: RunFixture.environment(python: "3.12.0", packages: ["numpy==1.26.4", "pandas==2.0"],
                                                                  variables: ["SEED": "2", "API_TOKEN": "<redacted>"]),
                              code: RunCode(commit: "c2", dirty: true, snapshot: codeB))
        let d = try repo.diffRuns("one", "bbbb")
        #expect(d.params == [FieldChange(key: "epochs", old: nil, new: "3"), FieldChange(key: "lr", old: "0.1", new: "0.01"),
                             FieldChange(key: "momentum", old: "0.9", new: nil)])
        #expect(d.params.map(\.kind) == ["added", "changed", "removed"])
        #expect(d.metrics.map(\.name) == ["acc", "loss"])
        #expect(d.metrics[0].delta == 0.25 && d.metrics[1].new == nil && d.metrics[1].delta == nil)
        #expect(d.inputs == [InputComparison(role: "eval", old: ["mnist@v1#eval"], new: ["mnist@v1#eval"], same: true),
                             InputComparison(role: "train", old: ["mnist@v1#train"], new: ["mnist@v2#train"], same: false)])
        #expect(d.environment.fields == [FieldChange(key: "python", old: "3.11.4", new: "3.12.0")])
        #expect(d.environment.variables == [FieldChange(key: "API_TOKEN", old: nil, new: "<redacted>"),
                                            FieldChange(key: "SEED", old: "1", new: "2")])
        #expect(d.environment.packages == [FieldChange(key: "numpy", old: "1.26.0", new: "1.26.4"),
                                           FieldChange(key: "pandas", old: nil, new: "2.0"),
                                           FieldChange(key: "torch", old: "2.1.0", new: nil)])
        #expect(d.code.oldCommit == "c1" && d.code.newCommit == "c2" && d.code.oldDirty == false && d.code.newDirty == true)
        #expect(d.code.files.map(\.path).sorted() == ["src/new.py", "src/train.py"])
        #expect(!d.code.isSame)

        let same = try repo.diffRuns("one", "one")
        #expect(same.params.isEmpty && same.environment.isEmpty && same.code.isSame && same.code.files.isEmpty)
        #expect(same.metrics.allSatisfy { $0.delta == 0 })
        expectMLVError({ if case .notFound = $0 { true } else { false } }, mentions: ["'nope'"]) { try repo.diffRuns("one", "nope") }
    }

    /// A store with mnist v1 and v2 (same eval content, different train), mnist v3 (new
    /// eval content), and models made by runs evaluated on them.
    func registry() throws -> (TestRepository, versions: [ObjectID]) {
        let t = try TestRepository()
        var versions: [ObjectID] = []
        try t.write("data", ["train/a": "1\n", "eval/b": "2\n"])
        versions.append(try t.add("mnist", "data") { $0.splits = ["train": "train", "eval": "eval"] }.id)
        try t.write("data/train/a", .text("more training data\n"))
        versions.append(try t.add("mnist", "data") { $0.splits = ["train": "train", "eval": "eval"] }.id)
        try t.write("data/eval/b", .text("a harder test set\n"))
        versions.append(try t.add("mnist", "data") { $0.splits = ["train": "train", "eval": "eval"] }.id)
        return (t, versions)
    }

    @discardableResult
    func trainedModel(_ t: TestRepository, run: String, train: ObjectID, eval: ObjectID?, acc: Double,
                      lr: String = "0.1") throws -> Int {
        var inputs = [Input(role: "train", id: train, split: "train")]
        if let eval { inputs.append(Input(role: "eval", id: eval, split: "eval")) }
        try RunFixture.record(t.repository, run: run, name: "train", params: ["lr": lr], points: [("acc", nil, acc)],
                              inputs: inputs, environment: RunFixture.environment())
        let root = try t.repository.datasetManifest(train).root
        return try RunFixture.model(t.repository, name: "digits", root: root, run: run)
    }

    @Test func theSameEvalSetUnderTwoDatasetVersionsCountsAsTheSameTestSet() throws {
        let (t, v) = try registry()
        try trainedModel(t, run: "0000000000000001", train: v[0], eval: v[0], acc: 0.90)
        try trainedModel(t, run: "0000000000000002", train: v[1], eval: v[1], acc: 0.93, lr: "0.05")
        try t.repository.promote("digits@v1", to: "production", message: "first")
        let c = try t.repository.compareModels("digits@production", "digits@v2")
        #expect(c.eval == .sameContent)
        #expect(c.evalNote.contains("mnist@v1#eval") && c.evalNote.contains("mnist@v2#eval"))
        #expect(c.old.stages == ["production"] && c.new.stages.isEmpty)
        #expect(c.metrics.count == 1 && abs(c.metrics[0].delta! - 0.03) < 1e-12)
        #expect(c.params == [FieldChange(key: "lr", old: "0.1", new: "0.05")])
        #expect(c.training == [InputComparison(role: "train", old: ["mnist@v1#train"], new: ["mnist@v2#train"], same: false)])
        #expect(c.environment.isEmpty)

        try trainedModel(t, run: "0000000000000003", train: v[1], eval: v[1], acc: 0.94)
        let same = try t.repository.compareModels("digits@v2", "digits@v3")
        #expect(same.eval == .same && same.evalNote.contains("mnist@v2#eval"))
        #expect(same.training.allSatisfy { $0.same })
    }

    @Test func differentEvalSetsAreFlagged() throws {
        let (t, v) = try registry()
        try trainedModel(t, run: "0000000000000001", train: v[0], eval: v[0], acc: 0.90)
        try trainedModel(t, run: "0000000000000002", train: v[2], eval: v[2], acc: 0.99)
        let c = try t.repository.compareModels("digits@v1", "digits@v2")
        #expect(c.eval == .different)
        #expect(c.evalNote.contains("DIFFERENT TEST SETS") && c.evalNote.contains("mnist@v3#eval"))
    }

    @Test func aMissingEvalSetOrRunIsSaidAndTheRestCompared() throws {
        let (t, v) = try registry()
        try trainedModel(t, run: "0000000000000001", train: v[0], eval: v[0], acc: 0.90)
        try trainedModel(t, run: "0000000000000002", train: v[0], eval: nil, acc: 0.91)
        try RunFixture.model(t.repository, name: "digits", root: try t.repository.datasetManifest(v[0]).root, run: nil,
                             inputs: [Input(role: "parent", id: v[0])])
        try RunFixture.model(t.repository, name: "digits", root: try t.repository.datasetManifest(v[0]).root,
                             run: "00000000000000ff")

        let noEval = try t.repository.compareModels("digits@v1", "digits@v2")
        #expect(noEval.eval == .missing && noEval.evalNote.contains("digits@v2 has no"))
        #expect(noEval.metrics.first?.delta != nil)

        let noRun = try t.repository.compareModels("digits@v1", "digits@v3")
        #expect(noRun.new.run == nil && noRun.new.runNote == "no run recorded")
        #expect(noRun.eval == .missing)
        #expect(noRun.metrics.map(\.new) == [nil])
        #expect(noRun.training.map(\.role) == ["parent", "train"])
        #expect(!noRun.environment.newRecorded && noRun.environment.oldRecorded)

        let ghost = try t.repository.compareModels("digits@v3", "digits@v4")
        #expect(ghost.new.runNote?.contains("00000000000000ff") == true)
        #expect(ghost.eval == .missing && ghost.evalNote.contains("neither"))
        expectMLVError({ if case .unknownRef = $0 { true } else { false } }, mentions: ["digits@v9"]) {
            try t.repository.compareModels("digits@v1", "digits@v9")
        }
    }
}
