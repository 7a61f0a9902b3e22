import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// What a finished child process left behind.
public struct ProcessResult: Sendable, CustomStringConvertible {
    public var arguments: [String]
    /// The process id it ran as (lock files it left behind name it).
    public var pid: pid_t
    /// The exit status, or 128 + signal number when it was killed.
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// True when it ran past its timeout and was killed.
    public var timedOut: Bool
    /// Set when the harness could not learn how the process ended or what it wrote
    /// (`waitpid` failed, say with ECHILD because something else reaped it, or its
    /// captured output could not be read); `status` is then -1, never a made-up 0.
    public var harnessError: String? = nil

    /// stdout split into lines, without the trailing empty one.
    public var lines: [String] {
        var parts = stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if parts.last == "" { parts.removeLast() }
        return parts
    }

    public var description: String {
        let problem = harnessError.map { " (harness error: \($0))" } ?? ""
        return "\(arguments.joined(separator: " ")) -> \(status)\(timedOut ? " (timed out)" : "")\(problem)\nstdout:\n\(stdout)stderr:\n\(stderr)"
    }
}

/// A child process started with `posix_spawn`: stdin is `/dev/null`, stdout and stderr go
/// to temporary files that are read when it ends.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let arguments: [String]
    private let outPath: String
    private let errPath: String
    private let timeout: Double
    /// Whether the child has been reaped (once it has, its pid may belong to another
    /// process), and the result of the first `wait`.
    private let state = Locked<(reaped: Bool, result: ProcessResult?)>((false, nil))

    /// Starts `executable` with `arguments` in `directory`.
    ///
    /// The environment is a small fixed one (PATH, HOME, TMPDIR, LANG=C.UTF-8) plus
    /// `environment`, so nothing from the caller's shell (say `MLV_IDENTITY`) leaks in.
    /// - Throws: `FileSystemError` when spawning fails.
    public init(executable: String, arguments: [String], directory: String, environment: [String: String] = [:],
                timeout: Double = 60) throws {
        self.arguments = [executable] + arguments
        self.timeout = timeout
        let scratch = try Scenario.makeDirectory(prefix: "mlv-proc")
        outPath = scratch + "/stdout"
        errPath = scratch + "/stderr"

        var env: [String: String] = ["PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"]
        for key in ["HOME", "TMPDIR", "USER"] {
            if let v = getenv(key) { env[key] = String(cString: v) }
        }
        for (k, v) in environment { env[k] = v }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // posix_spawn_file_actions_addchdir_np (glibc 2.29+, macOS 10.15+) is declared only
        // under _GNU_SOURCE, so it is looked up at run time.
        typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else {
            Scenario.removeTree(scratch)
            throw FileSystemError(call: "dlsym posix_spawn_file_actions_addchdir_np", path: directory, errno: ENOSYS)
        }
        _ = unsafeBitCast(symbol, to: AddChdir.self)(&actions, directory)

        let argv: [UnsafeMutablePointer<CChar>?] = self.arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        // The child starts with SIGPIPE (and the signals a test sends) at their defaults
        // and nothing blocked, whatever this test process has set.
        var attributes = Subprocess.childSignalAttributes()
        defer { posix_spawnattr_destroy(&attributes) }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else {
            Scenario.removeTree(scratch)
            throw FileSystemError(call: "posix_spawn", path: executable, errno: rc)
        }
        pid = child
    }

    /// Waits for the process (killing it after the timeout) and collects its output.
    /// A `waitpid` failure or unreadable output is reported in `harnessError` with
    /// status -1: a process whose end is unknown must not pass for one that exited 0.
    ///
    /// Waiting again returns the same result without touching the pid: after the first
    /// wait reaped the child, the kernel may have given its pid to another child of this
    /// test process (pids wrap at `pid_max`, 32768 here), and a second `waitpid` would
    /// reap that one, leaving its own waiter with ECHILD and no status.
    public func wait() -> ProcessResult {
        if let done = state.withLock({ $0.result }) { return done }
        let r = reap()
        return state.withLock { s in
            if let done = s.result { return done }
            s.result = r
            return r
        }
    }

    /// Sends `signal` unless the child has been reaped (its pid may be reused since).
    public func send(_ signal: Int32) {
        state.withLock { s in
            if !s.reaped { _ = kill(pid, signal) }
        }
    }

    private func reap() -> ProcessResult {
        var status: Int32 = 0
        var timedOut = false
        var problems: [String] = []
        let deadline = monotonicMilliseconds() + Int(timeout * 1000)
        while true {
            let (r, e) = state.withLock { s -> (pid_t, Int32) in
                if s.reaped { return (-1, ECHILD) }
                let r = waitpid(pid, &status, WNOHANG)
                let e = errno
                if r == pid { s.reaped = true }
                return (r, e)
            }
            if r == pid { break }
            if r < 0 {
                if e == EINTR { continue }
                problems.append("waitpid(\(pid)) failed: \(String(cString: strerror(e))) (errno \(e))"
                                + (e == ECHILD ? "; something else in this process reaped the child, or SIGCHLD is ignored" : ""))
                break
            }
            if monotonicMilliseconds() >= deadline && !timedOut {
                timedOut = true
                send(SIGKILL)
            }
            usleep(2000)
        }
        func capture(_ path: String) -> [UInt8] {
            do { return try FS.readFile(path) } catch {
                problems.append("cannot read the captured output: \(error)")
                return []
            }
        }
        let out = capture(outPath)
        let err = capture(errPath)
        Scenario.removeTree(FS.parent(of: outPath))
        // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out (the C macros are not imported).
        let code: Int32 = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return ProcessResult(arguments: arguments, pid: pid, status: problems.isEmpty ? code : -1,
                             stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self),
                             timedOut: timedOut, harnessError: problems.isEmpty ? nil : problems.joined(separator: "; "))
    }
}

/// The built `mlv` executable, for end-to-end tests.
public enum MLVBinary {
    public struct NotFound: Error, CustomStringConvertible {
        public var searched: [String]
        public var description: String {
            "the mlv executable was not found (build it first); looked at: \(searched.joined(separator: ", "))"
        }
    }

    /// Finds `mlv`: `$MLV_BINARY`, else beside the running test bundle (it is built into
    /// the same directory), else `<package>/.build/debug/mlv`.
    public static func path(packageFile: String = #filePath) throws -> String {
        var candidates: [String] = []
        if let env = getenv("MLV_BINARY") { candidates.append(String(cString: env)) }
        var executables: [String] = []
        if let exe = try? FS.readLink("/proc/self/exe") { executables.append(exe) }
        if let first = CommandLine.arguments.first { executables.append(FS.absolute(first)) }
        for exe in executables {
            // Linux: .build/<triple>/debug/mlvPackageTests.xctest; macOS: the bundle's
            // Contents/MacOS binary, three levels further down.
            var dir = FS.parent(of: exe)
            for _ in 0..<4 {
                candidates.append(dir + "/mlv")
                dir = FS.parent(of: dir)
            }
        }
        // Sources/MLVTestSupport/MLVBinary.swift -> the package root.
        let root = FS.parent(of: FS.parent(of: FS.parent(of: packageFile)))
        candidates.append(root + "/.build/debug/mlv")
        for c in candidates where isExecutableFile(c) { return c }
        throw NotFound(searched: candidates)
    }

    /// Runs `mlv ARGS` in `directory` and waits for it.
    public static func run(_ arguments: [String], in directory: String, environment: [String: String] = [:],
                           timeout: Double = 60) throws -> ProcessResult {
        try start(arguments, in: directory, environment: environment, timeout: timeout).wait()
    }

    /// Starts `mlv ARGS` in `directory` without waiting.
    public static func start(_ arguments: [String], in directory: String, environment: [String: String] = [:],
                             timeout: Double = 60) throws -> ChildProcess {
        try ChildProcess(executable: try path(), arguments: arguments, directory: directory,
                         environment: environment, timeout: timeout)
    }

    static func isExecutableFile(_ path: String) -> Bool {
        guard let found = try? FS.stat(path) else { return false }
        let st = found
        return (st.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }
}

/// Runs any program (for comparisons with tools such as `sha256sum`).
public func runProgram(_ executable: String, _ arguments: [String], in directory: String,
                       environment: [String: String] = [:], timeout: Double = 60) throws -> ProcessResult {
    try ChildProcess(executable: executable, arguments: arguments, directory: directory,
                     environment: environment, timeout: timeout).wait()
}
