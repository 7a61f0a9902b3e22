import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended.
public enum Termination: Equatable, Sendable {
    /// It called `exit(code)`.
    case exited(Int32)
    /// A signal ended it.
    case signaled(Int32)

    /// The status a shell reports: the exit code, or 128 + the signal number.
    public var shellStatus: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }

    /// Decodes a `waitpid(2)` status (WIFEXITED / WEXITSTATUS / WTERMSIG spelled out:
    /// the C macros are not imported).
    public init(waitStatus status: Int32) {
        if status & 0x7F == 0 { self = .exited((status >> 8) & 0xFF) } else { self = .signaled(status & 0x7F) }
    }
}

/// A child process started with `posix_spawnp(3)` (a `PATH` search, no shell), whose
/// stdout and stderr are inherited, discarded, or pipes the caller reads.
public final class Subprocess: @unchecked Sendable {
    /// Where one of the child's output streams goes.
    public enum Output: Sendable {
        case inherit, pipe, discard
        /// This descriptor (a pseudo-terminal's child side, say), dup2'd onto the stream;
        /// the caller keeps and closes its own copy.
        case descriptor(Int32)
    }

    public let pid: pid_t
    /// The read end of the child's stdout pipe (when `.pipe`, else -1), close-on-exec; the caller closes it.
    public let stdoutPipe: Int32
    /// The read end of the child's stderr pipe (when `.pipe`).
    public let stderrPipe: Int32
    private var reaped: Termination?

    /// Spawn attributes that start a child with an empty signal mask and default
    /// dispositions for SIGINT, SIGTERM, SIGQUIT and SIGPIPE, whatever this process has
    /// installed, ignored or blocked. The caller destroys them (`posix_spawnattr_destroy`).
    public static func childSignalAttributes() -> posix_spawnattr_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGQUIT, SIGPIPE] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        return attributes
    }

    /// Starts `arguments[0]` (searched on `PATH` when it has no slash) with `arguments`.
    ///
    /// The child starts with an empty signal mask and default dispositions for SIGINT,
    /// SIGTERM, SIGQUIT and SIGPIPE, whatever this process has installed or ignored.
    /// - Parameters:
    ///   - environment: the complete environment, or nil for this process's own.
    ///   - directory: the working directory, or nil for this process's.
    ///   - stdinNull: give the child `/dev/null` as stdin instead of this process's stdin.
    /// - Throws: `FileSystemError` (call `posix_spawnp`, errno ENOENT when the command is
    ///   not found, EACCES when it is not executable).
    public init(arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
                stdinNull: Bool = false, stdout: Output = .inherit, stderr: Output = .inherit) throws {
        precondition(!arguments.isEmpty, "a command needs at least its name")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = Self.childSignalAttributes()
        defer { posix_spawnattr_destroy(&attributes) }

        var opened: [Int32] = []
        defer { for fd in opened { Glibc.close(fd) } }
        func route(_ output: Output, _ target: Int32) throws -> Int32 {
            switch output {
            case .inherit:
                return -1
            case .discard:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
                return -1
            case .descriptor(let fd):
                posix_spawn_file_actions_adddup2(&actions, fd, target)
                return -1
            case .pipe:
                var fds: [Int32] = [0, 0]
                guard makePipe(&fds, nonBlockingRead: false) else { throw FileSystemError(call: "pipe2", path: arguments[0], errno: errno) }
                opened.append(fds[1])
                posix_spawn_file_actions_adddup2(&actions, fds[1], target)
                return fds[0]
            }
        }
        // Before any pipe is made, so this failure leaves none open.
        if let directory {
            // posix_spawn_file_actions_addchdir_np (glibc 2.29+) is declared only under
            // _GNU_SOURCE, so it is looked up at run time.
            typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
            guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else {
                throw FileSystemError(call: "dlsym posix_spawn_file_actions_addchdir_np", path: directory, errno: ENOSYS)
            }
            _ = unsafeBitCast(symbol, to: AddChdir.self)(&actions, directory)
        }
        if stdinNull { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
        let outRead = try route(stdout, 1)
        let errRead: Int32
        do { errRead = try route(stderr, 2) } catch {
            if outRead >= 0 { Glibc.close(outRead) }
            throw error
        }

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let env = environment ?? Self.currentEnvironment()
        let envp: [UnsafeMutablePointer<CChar>?] = env.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, arguments[0], &actions, &attributes, argv, envp)
        guard rc == 0 else {
            if outRead >= 0 { Glibc.close(outRead) }
            if errRead >= 0 { Glibc.close(errRead) }
            throw FileSystemError(call: "posix_spawnp", path: arguments[0], errno: rc)
        }
        pid = child
        stdoutPipe = outRead
        stderrPipe = errRead
    }

    /// Sends `signal` to the child (nothing once it has been reaped).
    public func send(_ signal: Int32) {
        if reaped == nil { _ = kill(pid, signal) }
    }

    /// Waits for the child to end.
    public func wait() -> Termination {
        if let reaped { return reaped }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { reaped = .exited(127); return .exited(127) }
        }
        let t = Termination(waitStatus: status)
        reaped = t
        return t
    }

    /// The child's end, if it has ended (does not block).
    public func poll() -> Termination? {
        if let reaped { return reaped }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        guard r == pid else { return nil }
        reaped = Termination(waitStatus: status)
        return reaped
    }

    /// This process's environment.
    public static func currentEnvironment() -> [String: String] {
        var out: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                out[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            p += 1
        }
        return out
    }

    /// Runs a command to completion, collecting stdout and stderr (stdin is /dev/null).
    /// - Throws: `FileSystemError` when it cannot be started.
    public static func capture(_ arguments: [String], directory: String? = nil,
                               environment: [String: String]? = nil) throws -> (termination: Termination, stdout: [UInt8], stderr: [UInt8]) {
        let p = try Subprocess(arguments: arguments, environment: environment, directory: directory, stdinNull: true,
                               stdout: .pipe, stderr: .pipe)
        var out: [UInt8] = [], err: [UInt8] = []
        var open = [p.stdoutPipe, p.stderrPipe]
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while !open.isEmpty {
            for fd in Pipes.waitReadable(open, timeoutMilliseconds: -1) {
                let n = buffer.withUnsafeMutableBytes { Pipes.read(fd, into: $0) }
                if n <= 0 {
                    Glibc.close(fd)
                    open.removeAll { $0 == fd }
                } else if fd == p.stdoutPipe {
                    out.append(contentsOf: buffer[0..<n])
                } else {
                    err.append(contentsOf: buffer[0..<n])
                }
            }
        }
        return (p.wait(), out, err)
    }
}

/// Small helpers for reading pipes and writing to terminals.
public enum Pipes {
    /// The descriptors among `fds` that are readable or closed, waiting up to
    /// `timeoutMilliseconds` (-1: forever). Empty on timeout or interruption.
    public static func waitReadable(_ fds: [Int32], timeoutMilliseconds: Int32) -> [Int32] {
        var polls = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        let n = polls.withUnsafeMutableBufferPointer { Glibc.poll($0.baseAddress, nfds_t($0.count), timeoutMilliseconds) }
        guard n > 0 else { return [] }
        return polls.filter { $0.revents != 0 }.map(\.fd)
    }

    /// Asks the kernel for a pipe buffer of `bytes` (`F_SETPIPE_SZ`, Linux), so a chatty
    /// writer is read in fewer, larger pieces; false when refused (the default stays).
    @discardableResult
    public static func setCapacity(_ fd: Int32, _ bytes: Int) -> Bool {
        #if os(Linux)
        return fcntl(fd, 1031 /* F_SETPIPE_SZ */, Int32(bytes)) >= 0
        #else
        return false
        #endif
    }

    /// One `read(2)`, retried on EINTR: the byte count, 0 at end of file, -1 on error.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n < 0 && errno == EINTR { continue }
            return n
        }
    }

    /// Writes everything to `fd`, retrying short writes and EINTR. A reader that is gone
    /// makes it return false (EPIPE) without raising SIGPIPE, whatever SIGPIPE's
    /// disposition (it is blocked in this thread for each write).
    /// - Returns: false when the descriptor refused (a closed pipe: EPIPE, or another error).
    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var at = 0
        while at < bytes.count {
            let n = withoutSIGPIPE { Glibc.write(fd, bytes.baseAddress! + at, bytes.count - at) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            at += n
        }
        return true
    }
}

/// `pipe2(2)`, looked up at run time (it is declared only under _GNU_SOURCE).
private let pipe2Function: (@convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32)? = {
    guard let symbol = dlsym(nil, "pipe2") else { return nil }
    return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32).self)
}()

/// A pipe with both ends close-on-exec from the start (`pipe2` with O_CLOEXEC), so a
/// child another thread spawns meanwhile never inherits it; `pipe` + `fcntl` where
/// `pipe2` is missing.
func makePipe(_ fds: inout [Int32], nonBlockingRead: Bool) -> Bool {
    let flags = O_CLOEXEC | (nonBlockingRead ? O_NONBLOCK : 0)
    if let pipe2Function {
        return fds.withUnsafeMutableBufferPointer { pipe2Function($0.baseAddress!, flags) } == 0
    }
    guard pipe(&fds) == 0 else { return false }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    if nonBlockingRead {
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }
    return true
}

/// The conventional name of a signal (`SIGINT`), or `SIG<number>` for one without a name here.
public func signalName(_ signal: Int32) -> String {
    let names: [Int32: String] = [
        SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
        SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGUSR1: "SIGUSR1",
        SIGSEGV: "SIGSEGV", SIGUSR2: "SIGUSR2", SIGPIPE: "SIGPIPE", SIGALRM: "SIGALRM", SIGTERM: "SIGTERM",
        SIGCHLD: "SIGCHLD", SIGCONT: "SIGCONT", SIGSTOP: "SIGSTOP", SIGTSTP: "SIGTSTP", SIGXCPU: "SIGXCPU",
        SIGXFSZ: "SIGXFSZ", SIGSYS: "SIGSYS",
    ]
    return names[signal] ?? "SIG\(signal)"
}

/// The signal self-pipe, made by the first `SignalForwarder` and never closed: a handler
/// may be running on another thread while a forwarder is uninstalled, and a write end
/// closed under it would have its number taken by the next open, whose file would then
/// receive the handler's bytes. Its write end, for the handlers (written once, before
/// any handler is installed).
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1
private let signalPipe = Mutex<(read: Int32, write: Int32)?>(nil)

/// The signal self-pipe, made on first use.
private func sharedSignalPipe() throws -> (read: Int32, write: Int32) {
    try signalPipe.withLock { made in
        if let made { return made }
        var fds: [Int32] = [0, 0]
        guard makePipe(&fds, nonBlockingRead: true) else { throw FileSystemError(call: "pipe2", path: "signal pipe", errno: errno) }
        // A burst of signals nobody takes must not block a handler.
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        signalPipeWriteEnd = fds[1]
        made = (fds[0], fds[1])
        return (fds[0], fds[1])
    }
}

/// Catches SIGINT and SIGTERM while a child runs and turns them into bytes on a pipe
/// (the self-pipe trick: the handler only calls `write(2)`), so a poll loop can forward
/// them to the child and record that the user interrupted.
///
/// Each caught signal is two bytes: the signal number, and 1 when the kernel sent it
/// from the terminal (Ctrl-C reaches the whole foreground process group, the child
/// included, so such a signal must not be sent to the child a second time) or 0 when a
/// process sent it (`kill`), in which case only forwarding reaches the child.
///
/// The pipe is one per process and stays open for its life (see `signalPipe`); one
/// forwarder is meant to be installed at a time.
public final class SignalForwarder: @unchecked Sendable {
    /// Read end: readable when a signal arrived.
    public let readEnd: Int32
    /// The write end the handlers write to (never closed).
    let writeEnd: Int32
    private var previous: [(Int32, sigaction)] = []
    private let signals: Set<Int32>

    /// Installs the handlers for `signals`.
    /// - Throws: `FileSystemError` when the pipe cannot be made.
    public init(signals: [Int32] = [SIGINT, SIGTERM]) throws {
        self.signals = Set(signals)
        let pipe = try sharedSignalPipe()
        readEnd = pipe.read
        writeEnd = pipe.write
        // Bytes of signals no earlier forwarder took are not ours.
        _ = take()
        for s in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_sigaction = { signal, info, _ in
                let saved = errno
                // SI_KERNEL (0x80): generated by the kernel, as the terminal's Ctrl-C is.
                let fromTerminal: UInt8 = (info?.pointee.si_code ?? 0) == 0x80 ? 1 : 0
                var bytes: (UInt8, UInt8) = (UInt8(truncatingIfNeeded: signal), fromTerminal)
                _ = withUnsafeBytes(of: &bytes) { Glibc.write(signalPipeWriteEnd, $0.baseAddress, 2) }
                errno = saved
            }
            action.sa_flags = SA_SIGINFO | SA_RESTART
            sigemptyset(&action.sa_mask)
            var old = sigaction()
            sigaction(s, &action, &old)
            previous.append((s, old))
        }
    }

    /// The signals caught since the last call: (signal, sent by the terminal); only those
    /// this forwarder catches.
    public func take() -> [(signal: Int32, fromTerminal: Bool)] {
        var out: [(Int32, Bool)] = []
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(readEnd, $0.baseAddress, 64) }
            if n <= 0 { break }
            var i = 0
            while i + 1 < n {
                // Only ours: a forwarder for other signals may have shared the pipe.
                if signals.contains(Int32(buffer[i])) { out.append((Int32(buffer[i]), buffer[i + 1] == 1)) }
                i += 2
            }
        }
        return out
    }

    /// Restores the previous handlers (once; later calls do nothing). The pipe stays
    /// open: a handler already running on another thread may still write to it.
    public func uninstall() {
        for (s, old) in previous {
            var o = old
            sigaction(s, &o, nil)
        }
        previous = []
    }
}
