import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `mlv show run`, `mlv logs`, `mlv metrics`: what is read back from a run's blobs.
@Suite struct RunDetailsTests {
    @Test func sparklineMapsTheRangeOntoEightLevels() {
        #expect(sparkline([1, 2, 3, 4, 5, 6, 7, 8]) == "▁▂▃▄▅▆▇█")
        #expect(sparkline([0, 10]) == "▁█")
        #expect(sparkline([3, 3, 3]) == "▄▄▄", "a flat series sits in the middle")
        #expect(sparkline([1, .nan, 2]) == "▁ █")
        #expect(sparkline([]) == "")
        #expect(sparkline([.nan]) == " ")
        let long = sparkline((0..<1000).map(Double.init), width: 20)
        #expect(long.count == 20 && long.first == "▁" && long.last == "█")
    }

    @Test func logLinesSplitIntoTimeStreamAndText() {
        let l = LogLine(parsing: Array("2026-11-27T01:00:00.123Z err oops: a b ".utf8))
        #expect(l == LogLine(time: "2026-11-27T01:00:00.123Z", stream: "err", text: "oops: a b "))
        #expect(LogLine(parsing: Array("2026-11-27T01:00:00.123Z out ".utf8)).text == "")
        #expect(LogLine(parsing: Array("no prefix here".utf8)) == LogLine(time: nil, stream: nil, text: "no prefix here"))
        var splitter = LineSplitter()
        var lines: [String] = []
        Array("a\nbc".utf8).withUnsafeBytes { splitter.feed($0) { lines.append(String(decoding: $0, as: UTF8.self)) } }
        Array("d\n\ne".utf8).withUnsafeBytes { splitter.feed($0) { lines.append(String(decoding: $0, as: UTF8.self)) } }
        splitter.finish { lines.append(String(decoding: $0, as: UTF8.self)) }
        #expect(lines == ["a", "bcd", "", "e"])
    }

    @Test func epochMillisecondsReadsFractionalSeconds() {
        #expect(epochMilliseconds("2026-11-27T01:00:00.123Z") == epochMilliseconds("2026-11-27T01:00:00Z")! + 123)
        #expect(epochMilliseconds("2026-11-27T01:00:00.5Z") == epochMilliseconds("2026-11-27T01:00:00Z")! + 500)
        #expect(epochMilliseconds("2026-11-27T01:00:00.Z") == nil)
        #expect(epochMilliseconds("yesterday") == nil)
    }

    @Test func metricSeriesAreReadBackAndLinedUpByStep() throws {
        let t = try TestRepository()
        let r = try RunFixture.record(t.repository, run: "0000000000000001", name: "r",
                                      points: [("loss", 1, 0.9), ("acc", 1, 0.5), ("loss", 2, 0.4), ("acc", 3, 0.7),
                                               ("loss", nil, 0.3)])
        let series = try t.repository.metricSeries(r)
        #expect(series.map(\.name) == ["loss", "acc"], "in order of first arrival")
        #expect(series[0].points.map(\.value) == [0.9, 0.4, 0.3])
        #expect(series[0].min == 0.3 && series[0].max == 0.9 && series[0].last == 0.3)
        #expect(series[0].points[0].time == "2026-11-27T01:00:00.000Z")
        let rows = metricTable(series)
        #expect(rows.map(\.step) == [1, 2, 3, nil])
        #expect(rows.map(\.values) == [[0.9, 0.5], [0.4, nil], [nil, 0.7], [0.3, nil]])
        #expect(try t.repository.metricSeries(r, names: ["acc"]).map(\.name) == ["acc"])
        expectMLVError({ if case .notFound = $0 { true } else { false } }, mentions: ["0000000000000001", "'f1'", "loss, acc"]) {
            try t.repository.metricSeries(r, names: ["f1"])
        }
    }

    @Test func aMissingBlobIsDamageNamingTheRunAndTheBlob() throws {
        let t = try TestRepository()
        let ghost = SHA256.hash(Array("never stored".utf8))
        let m = RunManifest(run: "0000000000000009", name: "ghost", command: ["x"], cwd: ".", started: "", ended: "",
                            status: .succeeded, series: ghost, log: ghost, author: "t")
        try t.repository.recordRun(m)
        let r = try t.repository.findRun("ghost")
        for body in [{ try t.repository.streamLog(r) { _ in } }, { _ = try t.repository.metricSeries(r) }] {
            expectMLVError({ if case .damaged = $0 { true } else { false } }, mentions: ["0000000000000009", ghost.hex, "missing"], body)
        }
        let none = try RunFixture.record(t.repository, run: "000000000000000a", name: "quiet")
        expectMLVError({ if case .notFound = $0 { true } else { false } }, mentions: ["000000000000000a", "no log"]) {
            try t.repository.streamLog(none) { _ in }
        }
    }

    @Test func logsStreamFromAnOffsetAndDetailsSummariseTheBlobs() throws {
        let t = try TestRepository()
        let log = (0..<2000).map { "2026-11-27T01:00:00.000Z out line \($0)\n" }.joined()
        let diff = "diff --git a/x b/x\n--- a/x\n+++ b/x\n-old\n+new\n+more\ndiff --git a/y b/y\nBinary files a/y and b/y differ\n"
        let diffID = try t.repository.storeBlobs([Array(diff.utf8)])[0]
        let r = try RunFixture.record(t.repository, run: "0000000000000002", name: "r", log: log,
                                      environment: RunFixture.environment(),
                                      system: "{\"cpu\":50.0,\"rss\":100}\n{\"cpu\":150.0,\"rss\":300}\n{\"cpu\":100.0,\"rss\":200}",
                                      code: RunCode(commit: "abc", dirty: true, diff: diffID))
        var whole: [UInt8] = []
        try t.repository.streamLog(r) { whole += $0 }
        #expect(whole == Array(log.utf8))
        var tail: [UInt8] = []
        try t.repository.streamLogBlob(r, from: 70_000) { tail += $0 }
        #expect(tail == Array(log.utf8.dropFirst(70_000)))

        let d = try t.repository.runDetails(r)
        #expect(d.durationMilliseconds == 5500)
        #expect(d.system == SystemSummary(samples: 3, peakRSS: 300, meanCPU: 100, peakCPU: 150))
        #expect(d.diffStat == DiffStat(files: 2, insertions: 2, deletions: 1, binaryFiles: 1))
        #expect(d.environment?.pythonVersion == "3.11.4" && d.environment?.cores == 2)
    }

    @Test func followPrintsAnActiveLogAsItGrowsThenTheStoredRest() throws {
        let t = try TestRepository()
        let repo = t.repository
        let run = "00000000000000f0"
        let dir = try RunFixture.active(repo, run: run, name: "live")
        let lines = (0..<50).map { "2026-11-27T01:00:00.\($0 < 10 ? "00" : "0")\($0)Z out step \($0)\n" }
        guard case .active(let active) = try repo.locateRun("live") else { Issue.record("not active"); return }
        let printed = Mutex(0)
        let writer = startThread {
            let fd = try! FS.open(dir + "/log", O_WRONLY | O_CREAT | O_APPEND)
            for line in lines.prefix(40) {
                try! FS.writeAll(fd, Array(line.utf8), path: "log")
                usleep(2000)
            }
            FS.close(fd)
            // Wait until the follower has printed the active log, so the rest can only come from the stored log.
            let written = lines.prefix(40).joined().utf8.count
            for _ in 0..<5000 where printed.withLock({ $0 }) < written { usleep(2000) }
            // The stored log holds everything, including lines written after the follower's last read.
            try! RunFixture.record(repo, run: run, name: "live", log: lines.joined())
            try! FS.removeTree(dir)
        }
        var seen: [UInt8] = []
        let end = try repo.followLog(active, pollMilliseconds: 5) { bytes in
            seen += bytes
            printed.withLock { $0 = seen.count }
        }
        pthread_join(writer, nil)
        #expect(seen == Array(lines.joined().utf8))
        guard case .recorded(let r) = end else { Issue.record("expected the recorded run, got \(end)"); return }
        #expect(r.run == run)
    }

    @Test func followStopsOnAnAbandonedRun() throws {
        let t = try TestRepository()
        let dir = try RunFixture.active(t.repository, run: "00000000000000f2", name: "dead", pid: Int64(Int32.max))
        try FS.atomicWrite(dir + "/log", Array("2026-11-27T01:00:00.000Z out last words\n".utf8))
        guard case .active(let a) = try t.repository.locateRun("dead") else { Issue.record("not active"); return }
        #expect(a.liveness == .abandoned)
        var seen: [UInt8] = []
        let end = try t.repository.followLog(a, pollMilliseconds: 1) { seen += $0 }
        guard case .abandoned = end else { Issue.record("expected abandoned, got \(end)"); return }
        #expect(String(decoding: seen, as: UTF8.self).hasSuffix("last words\n"))
        #expect(FS.isDirectory(dir), "an abandoned run is never deleted by reading it")
    }
}
