import MLVBasics
import MLVKit
import MLVModel
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `mlv metrics` and `mlv show run` on a run that is still going.
@Suite("active runs end to end")
struct RunActiveTests {
    @Test func metricsAndShowReadTheSeriesSoFar() throws {
        let s = try Session()
        try s.mlv("init")
        let repo = try Repository.open(searchingFrom: s.directory)
        let dir = try RunFixture.active(repo, run: "00000000000000a1", name: "live")
        #expect(try s.mlv("metrics", "live").stdout == "run 00000000000000a1 is running and has no metrics yet\n")
        let points = [MetricPoint(name: "loss", step: 1, time: "2026-11-27T04:00:01.000Z", value: 0.9),
                      MetricPoint(name: "loss", step: 2, time: "2026-11-27T04:00:02.000Z", value: 0.5),
                      MetricPoint(name: "acc", step: 2, time: "2026-11-27T04:00:02.000Z", value: 0.7)]
        // The last line is still being written: it is left for next time.
        try FS.atomicWrite(dir + "/series.jsonl", points.flatMap(\.line) + Array("{\"name\":\"lo".utf8))
        let json = try s.json("metrics", "live")
        #expect(json["status"] == .string("running"))
        #expect(json["metrics"]?.array?.map { $0["name"] } == [.string("loss"), .string("acc")])
        #expect(json["metrics"]?.array?.first?["points"]?.array?.count == 2)
        #expect(try s.mlv("metrics", "live", "--csv").lines == ["step,time,loss,acc", "1,2026-11-27T04:00:01.000Z,0.9,",
                                                               "2,2026-11-27T04:00:02.000Z,0.5,0.7"])
        let r = try MLVBinary.run(["metrics", "live", "f1"], in: s.directory, environment: s.environment)
        #expect(r.status == 2 && r.stderr.contains("'f1'"), "\(r)")
        let show = try s.json("show", "run", "live")
        #expect(show["metrics"] == .object(["loss": .double(0.5), "acc": .double(0.7)]))
        #expect(try s.mlv("show", "run", "live").stdout.contains("metric   loss=0.5 (so far)"))
    }

    /// A real `mlv run` whose command prints a line and logs a metric, then waits: `mlv
    /// metrics` sees the point and `mlv logs` the line while the run goes on.
    @Test func aLiveRunShowsItsMetrics() throws {
        let s = try Session()
        try s.mlv("init")
        let script = "echo hello; echo '{\"step\": 1, \"loss\": 0.25}' >> \"$MLV_METRICS_FILE\"; i=0; while [ ! -e go ] && [ $i -lt 400 ]; do sleep 0.02; i=$((i+1)); done"
        let run = try MLVBinary.start(["run", "--name", "waiting", "--", "sh", "-c", script], in: s.directory,
                                      environment: s.environment)
        var seen: JSON?
        for _ in 0..<100 {
            let r = try MLVBinary.run(["metrics", "waiting", "--json"], in: s.directory, environment: s.environment)
            if r.status == 0, let j = try? JSON.parse(Array(r.stdout.utf8)), j["metrics"]?.array?.isEmpty == false {
                seen = j
                break
            }
            usleep(50_000)
        }
        // The log is written through at least once a second, so it shows while the run goes on.
        var logged = ""
        for _ in 0..<100 where !logged.contains(" out hello\n") {
            logged = try MLVBinary.run(["logs", "waiting"], in: s.directory, environment: s.environment).stdout
            if !logged.contains(" out hello\n") { usleep(50_000) }
        }
        try Scenario.write(.text(""), at: s.path("go"))
        #expect(logged.hasSuffix(" out hello\n"), "\(logged)")
        #expect(run.wait().status == 0)
        #expect(seen?["status"] == .string("running"), "\(String(describing: seen))")
        #expect(seen?["metrics"]?.array?.first?["last"] == .double(0.25))
        #expect(try s.json("metrics", "waiting")["status"] == nil, "recorded now")
    }
}
