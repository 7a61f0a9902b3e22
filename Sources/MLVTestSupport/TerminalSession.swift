import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// Runs the `mlv` binary with its stdout and stderr on two pseudo-terminals (stdin is
/// `/dev/null`), as when a person runs it in a terminal, and collects what it writes to
/// each. Both are raw (see `PseudoTerminal`), so the bytes read are the bytes written.
public final class TerminalSession: @unchecked Sendable {
    public let process: Subprocess
    public let arguments: [String]
    private let terminals: [PseudoTerminal]
    private var output: [[UInt8]] = [[], []]
    private var open: [Bool] = [true, true]
    private let deadline: Int

    /// Starts `mlv ARGS` in `directory` with a small fixed environment (as `ChildProcess`)
    /// plus `environment`, both streams on terminals of `size`.
    /// - Throws: `FileSystemError` when a terminal cannot be opened or mlv not started;
    ///   `MLVBinary.NotFound`.
    public init(_ arguments: [String], in directory: String, environment: [String: String] = [:],
                size: WindowSize = WindowSize(rows: 24, columns: 80), timeout: Double = 60) throws {
        self.arguments = arguments
        terminals = [try PseudoTerminal(size: size), try PseudoTerminal(size: size)]
        var env: [String: String] = ["PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"]
        for key in ["HOME", "TMPDIR", "USER"] {
            if let v = getenv(key) { env[key] = String(cString: v) }
        }
        for (k, v) in environment { env[k] = v }
        process = try Subprocess(arguments: [try MLVBinary.path()] + arguments, environment: env, directory: directory,
                                 stdinNull: true, stdout: .descriptor(terminals[0].child),
                                 stderr: .descriptor(terminals[1].child))
        for t in terminals { t.closeChild() }
        deadline = monotonicMilliseconds() + Int(timeout * 1000)
    }

    /// What mlv wrote to its stdout so far.
    public var stdout: String { String(decoding: output[0], as: UTF8.self) }
    /// What mlv wrote to its stderr so far.
    public var stderr: String { String(decoding: output[1], as: UTF8.self) }

    /// Reads until `done` holds for what was read (stdout, stderr), both terminals end,
    /// or the timeout passes; returns whether `done` held.
    @discardableResult
    public func read(until done: (String, String) -> Bool = { _, _ in false }) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while open.contains(true) {
            if done(stdout, stderr) { return true }
            let now = monotonicMilliseconds()
            if now >= deadline { return false }
            let fds = (0..<2).filter { open[$0] }.map { terminals[$0].master }
            for fd in Pipes.waitReadable(fds, timeoutMilliseconds: Int32(min(100, deadline - now))) {
                let i = fd == terminals[0].master ? 0 : 1
                let n = buffer.withUnsafeMutableBytes { Pipes.read(fd, into: $0) }
                // The end of a pseudo-terminal is EIO (its last child-side holder closed it).
                if n <= 0 { open[i] = false } else { output[i].append(contentsOf: buffer[0..<n]) }
            }
        }
        return done(stdout, stderr)
    }

    /// Resizes both terminals (as a terminal window does) and sends mlv SIGWINCH (the
    /// terminals are not mlv's controlling terminal, so the kernel does not).
    public func resize(_ size: WindowSize) {
        for t in terminals { t.setSize(size) }
        process.send(SIGWINCH)
    }

    /// Reads everything to the end, waits for mlv (killing it after the timeout).
    public func finish() -> ProcessResult {
        read()
        var timedOut = false
        while process.poll() == nil {
            if monotonicMilliseconds() >= deadline, !timedOut {
                timedOut = true
                process.send(SIGKILL)
            }
            usleep(2000)
        }
        return ProcessResult(arguments: ["mlv"] + arguments, pid: process.pid, status: process.wait().shellStatus,
                             stdout: stdout, stderr: stderr, timedOut: timedOut)
    }
}
