import MLVModel
import MLVTestSupport
import Testing

/// The example pipeline (examples/demo.sh) run by the real binary, and blame's exit codes.
@Suite struct LineageEndToEndTests {
    /// The package root, from this file's path.
    static let packageRoot: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }()

    @Test func theExamplePipelineAndItsBlame() throws {
        let s = try Session(identity: "ci@test")
        let binary = try MLVBinary.path()
        let demo = try runProgram("/bin/bash", [Self.packageRoot + "/examples/demo.sh", s.path("work")], in: s.directory,
                                  environment: ["MLV": binary], timeout: 300)
        #expect(demo.status == 0, "\(demo)")
        #expect(demo.stdout.contains("model:points-clf@v2  [production]"), "blame shows the production model")

        let blame = try s.json("blame", "--file", "prep.py", "--contains", "x / scale, x / scale", "--store", s.path("work"))
        let affected = blame["affected"]!.array!
        let model = affected.first { $0["kind"] == "model" }
        #expect(model?["name"] == "points-clf" && model?["version"] == 2)
        #expect(model?["stages"] == ["production"])
        #expect(model?["path"]?.array?.count ?? 0 >= 3)
        #expect(affected.contains { $0["kind"] == "dataset" && $0["name"] == "points-clean" && $0["version"] == 2 })
        #expect(!affected.contains { $0["version"] == 1 }, "the first pass used the good code")

        // Deleting the derived index changes no answer.
        Scenario.removeTree(s.path("work/.mlv/index.sqlite"))
        let again = try s.json("blame", "--file", "prep.py", "--contains", "x / scale, x / scale", "--store", s.path("work"))
        #expect(again == blame)
        let fromRaw = try s.json("blame", "points-raw@v1", "--store", s.path("work"))
        #expect(fromRaw["affected"]!.array!.filter { $0["kind"] == "model" }.count == 2)

        // The CI gate.
        try s.mlv("blame", "points-clean@v2", "--fail-if-stage", "production", "--store", s.path("work"), status: 1)
        try s.mlv("blame", "points-clean@v1", "--fail-if-stage", "production", "--store", s.path("work"))
        let dot = try s.mlv("lineage", "points-clf@production", "--both", "--format", "dot", "--store", s.path("work"))
        #expect(dot.stdout.hasPrefix("digraph lineage {"))
    }

    @Test func blameBadInputAndExitCodes() throws {
        let s = try Session()
        try s.mlv("init")
        try s.write("raw", ["a.csv": "1\n"])
        try s.mlv("add", "dataset", "raw", "raw")
        let none = try s.mlv("blame", "0123456789abcdef0123")
        #expect(none.stdout.contains("nothing matches"))
        try s.mlv("blame", "0123456789abcdef0123", "--fail-if-empty", status: 1)
        let empty = try s.json("blame", "0123456789abcdef0123")
        #expect(empty["affected"] == [])
        let missing = try s.mlv("blame", "nosuch@v1", status: 2)
        #expect(missing.stderr.contains("nosuch@v1"))
        let outside = try s.mlv("blame", "--commit", "abc123", status: 5)
        #expect(outside.stderr.contains("git repository"))
        try s.mlv("blame", "raw@v1", "--commit", "abc", status: 64)
        try s.mlv("blame", "--code", "x.py", status: 64)
        try s.mlv("taint", "raw@v1", "-m", "bad rows")
        try s.mlv("taint", "raw@v1", "-m", "again", status: 5)
        let shown = try s.mlv("show", "raw@v1")
        #expect(shown.stdout.contains("tainted  bad rows"))
        try s.mlv("untaint", "raw@v1", "-m", "fine")
        try s.mlv("untaint", "raw@v1", "-m", "fine", status: 2)
        let reindex = try s.mlv("reindex")
        #expect(reindex.stdout.hasPrefix("reindexed 1 nodes"))
        try s.mlv("lineage", "raw@v1", "--depth", "-1", status: 64)
    }
}
