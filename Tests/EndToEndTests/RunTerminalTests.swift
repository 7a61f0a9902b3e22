import MLVBasics
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `mlv run` in a terminal: the command gets a pseudo-terminal for each stream that is a
/// terminal (so it keeps colours and line buffering), sized like mlv's and resized with
/// it; `--no-pty` and a non-terminal stdout keep pipes. Driven through `TerminalSession`.
@Suite("mlv run in a terminal")
struct RunTerminalTests {
    func store() throws -> Session {
        let s = try Session()
        try s.mlv("init")
        return s
    }

    /// The log lines without their time stamps (`out text`, `err text`).
    func logLines(_ s: Session, _ run: String) throws -> [String] {
        try s.mlv("logs", run).lines.map { String($0.split(separator: " ", maxSplits: 1).last ?? "") }
    }

    static let probe = "test -t 1 && echo out-tty; test -t 2 && echo err-tty >&2; stty size <&1; printf 'a\\nb'"

    @Test func theCommandSeesTerminalsAndTheLogKeepsTheStreamsApart() throws {
        let s = try store()
        let t = try TerminalSession(["run", "--name", "tty", "--", "sh", "-c", Self.probe], in: s.directory,
                                    environment: s.environment, size: WindowSize(rows: 30, columns: 100))
        let r = t.finish()
        #expect(r.status == 0 && !r.timedOut, "\(r)")
        #expect(r.stdout == "out-tty\n30 100\na\nb", "the bytes as written, no \\r added: \(r)")
        #expect(r.stderr.hasPrefix("err-tty\n"), "\(r)")
        // The two streams are read separately, so only each one's own order is certain.
        let log = try logLines(s, "tty")
        #expect(log.filter { $0.hasPrefix("out ") } == ["out out-tty", "out 30 100", "out a", "out b"], "\(log)")
        #expect(log.filter { $0.hasPrefix("err ") } == ["err err-tty"], "\(log)")
    }

    @Test func noPtyAndAFileKeepPipes() throws {
        let s = try store()
        let t = try TerminalSession(["run", "--no-pty", "--name", "piped", "--", "sh", "-c", Self.probe], in: s.directory,
                                    environment: s.environment)
        let r = t.finish()
        #expect(r.status == 0, "\(r)")
        #expect(!r.stdout.contains("out-tty") && !r.stderr.contains("err-tty"), "\(r)")
        let f = try MLVBinary.run(["run", "--", "sh", "-c", "test -t 1 || echo not-a-terminal"], in: s.directory,
                                  environment: s.environment)
        #expect(f.status == 0 && f.stdout == "not-a-terminal\n", "\(f)")
    }

    @Test func aResizeReachesTheCommand() throws {
        let s = try store()
        let script = "trap 'stty size <&1; exit 0' WINCH; echo ready; i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; exit 9"
        let t = try TerminalSession(["run", "--", "sh", "-c", script], in: s.directory, environment: s.environment,
                                    size: WindowSize(rows: 24, columns: 80))
        #expect(t.read { out, _ in out.contains("ready\n") })
        t.resize(WindowSize(rows: 40, columns: 120))
        #expect(t.read { out, _ in out.contains("40 120\n") }, "\(t.stdout)")
        let r = t.finish()
        #expect(r.status == 0, "\(r)")
    }

    @Test func anInterruptIsForwardedAndRecorded() throws {
        let s = try store()
        let t = try TerminalSession(["run", "--name", "stopped", "--", "sh", "-c", "echo ready; exec sleep 10"], in: s.directory,
                                    environment: s.environment)
        #expect(t.read { out, _ in out.contains("ready\n") })
        t.process.send(SIGINT)
        let r = t.finish()
        #expect(r.status == 130, "\(r)")
        #expect(r.stderr.contains("(stopped) interrupted (SIGINT)"), "\(r)")
    }
}
