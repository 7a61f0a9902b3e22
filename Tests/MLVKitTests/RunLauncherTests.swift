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

    func open(_ path: String, _ flags: Int32) throws -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC, 0o644)
        try #require(fd >= 0, "open \(path)")
        return fd
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
        for _ in 0..<5 {
            let l = try launcher()
            ids.append(try l.run(stdout: null, stderr: null).record.run)
        }
        // The newest three, oldest first, and the count of all five.
        func check() throws {
            let l = try launcher()
            #expect(l.previous.map(\.run) == Array(ids.suffix(3)))
            #expect(l.previousCount == 5)
        }
        try check()
        #expect(try launcher(["true", "x"]).previous.isEmpty)
        #expect(try launcher(["true", "x"]).previousCount == 0)
        let cache = t.repository.cachePath + "/run-fingerprints"
        let text = String(decoding: try FS.readFile(cache), as: UTF8.self)
        #expect(text.split(separator: "\n").count == 5)
        // Point the newest run's cached manifest id elsewhere: the ref decides.
        let other = ObjectID(digest: [UInt8](repeating: 7, count: 32)).hex
        let edited = text.split(separator: "\n").map { line -> String in
            var parts = line.split(separator: " ").map(String.init)
            if parts[0] == ids.last! { parts[1] = other }
            return parts.joined(separator: " ")
        }.joined(separator: "\n") + "\n"
        try FS.atomicWrite(cache, Array(edited.utf8), durable: false)
        try check()
        #expect(!String(decoding: try FS.readFile(cache), as: UTF8.self).contains(other), "the cache was corrected")
        try FS.unlink(cache)
        try check()
    }
}
