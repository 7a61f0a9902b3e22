import MLVModel
import MLVTestSupport
import Testing

@Suite("mlv processes at once")
struct ConcurrentProcessTests {
    /// Two `mlv add` processes started together on one store: both succeed, one gets v1
    /// and the other v2, and the store stays clean.
    @Test func twoAddsOfTheSameDatasetAtOnce() throws {
        let s = try Session()
        try s.mlv("init")
        try s.write("one", ["a.bin": .random(seed: 1, count: 400_000), "x.txt": "one\n"])
        try s.write("two", ["a.bin": .random(seed: 2, count: 400_000), "x.txt": "two\n"])
        let children = try ["one", "two"].map { dir in
            try MLVBinary.start(["add", "dataset", "mnist", dir], in: s.directory, environment: s.environment)
        }
        let results = children.map { $0.wait() }
        let succeeded = results.filter { $0.status == 0 }
        for r in results {
            #expect(r.status == 0 && !r.timedOut && r.stderr.isEmpty, "\(r)")
        }
        #expect(!succeeded.isEmpty)
        let versions = succeeded.compactMap { $0.lines.first?.split(separator: " ").first.map(String.init) }
        #expect(Set(versions) == Set((1...max(1, succeeded.count)).map { "mnist@v\($0)" }))
        // Whatever happened, the store is intact and each version holds what its process added.
        try s.mlv("fsck", "--full")
        #expect(try s.json("log", "dataset", "mnist").array?.count == succeeded.count)
        for (r, dir) in zip(results, ["one", "two"]) where r.status == 0 {
            let version = try #require(r.lines.first?.split(separator: " ").first.map(String.init))
            try s.mlv("checkout", version, "--to", "out-" + dir)
            #expect(try Scenario.snapshot(s.path("out-" + dir)) == Scenario.snapshot(s.path(dir)))
        }
    }

    /// gc (which takes the store's lock exclusively) and add at once: neither loses data.
    @Test func gcAndAddAtOnce() throws {
        let s = try Session()
        try s.mlv("init")
        try s.write("one", ["a.bin": .random(seed: 3, count: 300_000)])
        try s.mlv("add", "dataset", "first", "one")
        try s.write("two", ["b.bin": .random(seed: 4, count: 300_000)])
        let add = try MLVBinary.start(["add", "dataset", "second", "two"], in: s.directory, environment: s.environment)
        let gc = try MLVBinary.start(["gc", "--grace", "0"], in: s.directory, environment: s.environment)
        let (a, g) = (add.wait(), gc.wait())
        #expect(a.status == 0, "\(a)")
        #expect(g.status == 0, "\(g)")
        try s.mlv("fsck", "--full")
        try s.mlv("checkout", "second", "--to", "out")
        #expect(try Scenario.snapshot(s.path("out")) == Scenario.snapshot(s.path("two")))
    }
}
