@testable import MLVBasics
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SubprocessTests {
    @Test func captureCollectsBothStreamsAndTheStatus() throws {
        let r = try Subprocess.capture(["sh", "-c", "printf out; printf err >&2; exit 7"])
        #expect(r.termination == .exited(7))
        #expect(r.stdout == Array("out".utf8))
        #expect(r.stderr == Array("err".utf8))
        #expect(r.termination.shellStatus == 7)
    }

    @Test func aSignalIsReportedAsSuch() throws {
        let r = try Subprocess.capture(["sh", "-c", "kill -TERM $$"])
        #expect(r.termination == .signaled(SIGTERM))
        #expect(r.termination.shellStatus == 128 + SIGTERM)
        #expect(signalName(SIGTERM) == "SIGTERM")
        #expect(signalName(SIGINT) == "SIGINT")
    }

    /// With SIGPIPE at its default (a raised one would end this test process), a write to
    /// a pipe whose reader is gone returns false with EPIPE, and leaves no SIGPIPE pending.
    @Test func aWriteToAPipeWhoseReaderLeftFailsWithoutSIGPIPE() throws {
        #expect(sigpipeIsAtItsDefault())
        var fds: [Int32] = [0, 0]
        // Close-on-exec from the start: a child another test spawns meanwhile must not
        // keep the read end open, or this write would not see EPIPE.
        try #require(makePipe(&fds, nonBlockingRead: false))
        close(fds[0])
        defer { close(fds[1]) }
        let bytes = [UInt8](repeating: 7, count: 1 << 16)
        let ok = bytes.withUnsafeBytes { Pipes.writeAll(fds[1], $0) }
        let code = errno
        #expect(!ok && code == EPIPE, "errno \(code)")
        var pending = sigset_t()
        sigpending(&pending)
        #expect(sigismember(&pending, SIGPIPE) == 0)
    }

    @Test func aMissingCommandIsENOENT() {
        #expect { try Subprocess(arguments: ["mlv-no-such-command-xyz"]) } throws: { e in
            (e as? FileSystemError)?.errno == ENOENT
        }
    }

    @Test func environmentAndDirectoryAreTheGivenOnes() throws {
        let r = try Subprocess.capture(["sh", "-c", "echo $FOO; pwd"], directory: "/", environment: ["FOO": "bar", "PATH": "/usr/bin:/bin"])
        #expect(String(decoding: r.stdout, as: UTF8.self) == "bar\n/\n")
    }

    @Test func timestampsWithMilliseconds() {
        #expect(Timestamp.format(nanoseconds: 1_795_000_000_007_000_000) == "2026-11-18T11:06:40.007Z")
        #expect(Timestamp.format(nanoseconds: 0) == "1970-01-01T00:00:00.000Z")
    }

    @Test func systemFilesReadsProcAndUname() {
        #expect(SystemFiles.text("/proc/self/stat")?.isEmpty == false)
        #expect(SystemFiles.read("/no/such/file") == nil)
        #expect(!SystemFiles.uname().release.isEmpty)
        #expect(SystemFiles.processIDs().contains(getpid()))
        #expect(SystemFiles.onPath("sh"))
    }
}

/// Serialized: the forwarders of one process share its signal pipe.
@Suite("SignalForwarder", .serialized) struct SignalForwarderTests {
    /// A caught signal comes out of `take` once, marked as not sent by the terminal.
    @Test func aCaughtSignalIsTaken() throws {
        let f = try SignalForwarder(signals: [SIGUSR2])
        defer { f.uninstall() }
        // A forwarder another suite installs meanwhile empties the shared pipe as it
        // starts: a signal it swallowed is sent again.
        var got: [(signal: Int32, fromTerminal: Bool)] = []
        for _ in 0..<5 where got.isEmpty {
            kill(getpid(), SIGUSR2)
            _ = Pipes.waitReadable([f.readEnd], timeoutMilliseconds: 2000)
            got = f.take()
        }
        #expect(got.map(\.signal) == [SIGUSR2] && got.allSatisfy { !$0.fromTerminal })
    }

    /// A handler already running on another thread when `uninstall` restores the old
    /// handlers writes to the pipe after it. That write end must not have been closed:
    /// its number would go to the next open, and the handler's bytes into that file.
    /// Uninstalling twice must not close anything either.
    @Test func uninstallLeavesTheHandlersPipeOpen() throws {
        let f = try SignalForwarder(signals: [SIGUSR2])
        let writeEnd = f.writeEnd
        f.uninstall()
        let dir = try TemporaryDirectory()
        let paths = [dir.appending("a"), dir.appending("b")]
        let opened = paths.map { Glibc.open($0, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        f.uninstall()
        // What a late handler does.
        var bytes: (UInt8, UInt8) = (UInt8(SIGUSR2), 0)
        _ = withUnsafeBytes(of: &bytes) { Glibc.write(writeEnd, $0.baseAddress, 2) }
        for (fd, path) in zip(opened, paths) {
            #expect(fcntl(fd, F_GETFD) != -1, "uninstall closed the descriptor \(fd) of \(path)")
            Glibc.close(fd)
            #expect(try FS.readFile(path).isEmpty, "a late handler's bytes landed in \(path)")
        }
        let next = try SignalForwarder(signals: [SIGUSR2])
        defer { next.uninstall() }
        #expect(next.take().isEmpty, "bytes written before a forwarder was installed are not its signals")
    }
}
