import MLVBasics
@testable import MLVKit
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct RunLauncherTests {
    /// When the relay loop fails (here the run's log cannot be written), the read ends
    /// of the command's output pipes are closed all the same: the command then sees its
    /// output refused (EPIPE) instead of writing into pipes nobody reads, held open by a
    /// leak for as long as this process lives.
    @Test func aFailedLogWriteStillClosesTheCommandsPipes() throws {
        let t = try TestRepository()
        let marker = t.path("refused")
        // Writes a line every 50 ms for up to 10 s; once a write is refused, leaves the marker.
        let script = "trap '' PIPE; i=0; while [ $i -lt 200 ]; do /bin/echo x 2>/dev/null || { : > '\(marker)'; exit 0; }; sleep 0.05; i=$((i+1)); done"
        var request = RunRequest(command: ["sh", "-c", script])
        request.terminal = false
        request.directory = t.directory
        let launcher = try RunLauncher(repository: t.repository, request: request)
        let null = Glibc.open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { Glibc.close(null) }
        let logPath = launcher.activeDirectory + "/log"
        let failed = FaultInjection.withHook({ op, path in op == .write && path == logPath ? EIO : nil }) {
            do { _ = try launcher.run(stdout: null, stderr: null); return false } catch { return true }
        }
        #expect(failed, "the log write was made to fail")
        // Nor does the log's background storing outlive the failed run (it reads the log
        // every 100 ms while it runs).
        let reads = AtomicCounter()
        FaultInjection.withHook({ op, path in
            if op == .open && path == logPath { reads.add(1) }
            return nil
        }) { usleep(500_000) }
        #expect(reads.current == 0, "the log was read \(reads.current) times after the run failed")
        let deadline = monotonicMilliseconds() + 10_000
        while !FS.exists(marker) && monotonicMilliseconds() < deadline { usleep(20_000) }
        #expect(FS.exists(marker), "the command's output pipes were left open after the run failed")
    }

    /// Runs `script` with stdout and stderr going to the given descriptors; returns the
    /// run's log as `mlv logs` prints it, without the times: "out LINE" / "err LINE".
    func run(_ script: String, in t: TestRepository, stdout: Int32, stderr: Int32) throws -> [String] {
        var request = RunRequest(command: ["sh", "-c", script])
        request.terminal = false
        request.directory = t.directory
        let result = try RunLauncher(repository: t.repository, request: request).run(stdout: stdout, stderr: stderr)
        #expect(result.exitStatus == 0)
        var text: [UInt8] = []
        try t.repository.streamLog(result.record) { text += $0 }
        return String(decoding: text, as: UTF8.self).split(separator: "\n").map { LogLine(parsing: Array($0.utf8)) }
            .map { "\($0.stream ?? "?") \($0.text)" }
    }

    func open(_ path: String, _ flags: Int32) throws -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC, 0o644)
        try #require(fd >= 0, "open \(path)")
        return fd
    }

    /// A stream redirected to a regular file is written by the command itself and the file
    /// is followed for the log: the file holds exactly the command's bytes, and the log has
    /// them under the right stream, however much is written and however it is paced.
    @Test func aStreamGoingToAFileIsWrittenDirectlyAndStillLogged() throws {
        let t = try TestRepository()
        let outPath = t.path("out.txt"), errPath = t.path("err.txt")
        let out = try open(outPath, O_WRONLY | O_CREAT | O_TRUNC), err = try open(errPath, O_WRONLY | O_CREAT | O_TRUNC)
        defer { Glibc.close(out); Glibc.close(err) }
        #expect(FileFollower(out, notSharedWith: err) != nil, "the files are followed, not relayed")
        let script = "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; echo oops >&2; sleep 0.05; echo last; printf tail"
        let log = try run(script, in: t, stdout: out, stderr: err)
        let expected = (0..<3000).map { "line \($0)\n" }.joined() + "last\ntail"
        #expect(String(decoding: try FS.readFile(outPath), as: UTF8.self) == expected)
        #expect(String(decoding: try FS.readFile(errPath), as: UTF8.self) == "oops\n")
        #expect(log.filter { $0.hasPrefix("out ") } == (0..<3000).map { "out line \($0)" } + ["out last", "out tail"])
        #expect(log.filter { $0.hasPrefix("err ") } == ["err oops"])
    }

    /// Appending to a file that has content: only what the command adds is logged.
    @Test func anAppendedFileLogsOnlyWhatTheCommandAdds() throws {
        let t = try TestRepository()
        let outPath = t.path("out.txt")
        try Scenario.write(.text("before\n"), at: outPath)
        let out = try open(outPath, O_WRONLY | O_APPEND)
        defer { Glibc.close(out) }
        let null = try open("/dev/null", O_WRONLY)
        defer { Glibc.close(null) }
        let log = try run("echo one; echo two", in: t, stdout: out, stderr: null)
        #expect(String(decoding: try FS.readFile(outPath), as: UTF8.self) == "before\none\ntwo\n")
        #expect(log == ["out one", "out two"])
    }

    /// Both streams into one file (`> f 2>&1`), and a file written from its start over old
    /// content: relayed as before, so the log keeps out and err apart and holds only the
    /// command's bytes, and the file ends as the command alone would leave it.
    @Test func sharedOrOverwrittenFilesAreRelayed() throws {
        let t = try TestRepository()
        let both = try open(t.path("both.txt"), O_WRONLY | O_CREAT | O_TRUNC)
        defer { Glibc.close(both) }
        let log = try run("echo a; echo b >&2; echo c", in: t, stdout: both, stderr: both)
        // (A relay reads the two pipes in turn, so only each stream's own order is kept.)
        #expect(log.filter { $0.hasPrefix("out ") } == ["out a", "out c"])
        #expect(log.filter { $0.hasPrefix("err ") } == ["err b"])
        #expect(String(decoding: try FS.readFile(t.path("both.txt")), as: UTF8.self).split(separator: "\n").sorted() == ["a", "b", "c"])

        try Scenario.write(.text("0123456789\n"), at: t.path("old.txt"))
        let old = try open(t.path("old.txt"), O_WRONLY)
        defer { Glibc.close(old) }
        let null = try open("/dev/null", O_WRONLY)
        defer { Glibc.close(null) }
        #expect(FileFollower(old, notSharedWith: null) == nil, "an offset before the end is not followed")
        let log2 = try run("printf xy", in: t, stdout: old, stderr: null)
        #expect(log2 == ["out xy"])
        #expect(String(decoding: try FS.readFile(t.path("old.txt")), as: UTF8.self) == "xy23456789\n")
    }

    /// Earlier identical runs are found through the fingerprint cache, which a wrong
    /// manifest id (a stale or edited cache) or its loss does not mislead.
    @Test func identicalRunsAreFoundWhateverTheCacheSays() throws {
        let t = try TestRepository()
        let null = try open("/dev/null", O_WRONLY)
        defer { Glibc.close(null) }
        func launcher(_ command: [String] = ["true"]) throws -> RunLauncher {
            var request = RunRequest(command: command)
            request.terminal = false
            request.directory = t.directory
            return try RunLauncher(repository: t.repository, request: request)
        }
        var ids: [String] = []
        for _ in 0..<2 {
            let l = try launcher()
            ids.append(try l.run(stdout: null, stderr: null).record.run)
        }
        #expect(try launcher().previous.map(\.run).sorted() == ids.sorted())
        #expect(try launcher(["true", "x"]).previous.isEmpty)
        let cache = t.repository.cachePath + "/run-fingerprints"
        let text = String(decoding: try FS.readFile(cache), as: UTF8.self)
        #expect(text.split(separator: "\n").count == 2)
        // Point the first run's cached manifest id elsewhere: the ref decides.
        let other = ObjectID(digest: [UInt8](repeating: 7, count: 32)).hex
        let edited = text.split(separator: "\n").enumerated().map { i, line -> String in
            var parts = line.split(separator: " ").map(String.init)
            if i == 0 { parts[1] = other }
            return parts.joined(separator: " ")
        }.joined(separator: "\n") + "\n"
        try FS.atomicWrite(cache, Array(edited.utf8), durable: false)
        #expect(try launcher().previous.map(\.run).sorted() == ids.sorted())
        #expect(!String(decoding: try FS.readFile(cache), as: UTF8.self).contains(other), "the cache was corrected")
        try FS.unlink(cache)
        #expect(try launcher().previous.map(\.run).sorted() == ids.sorted())
    }
}
