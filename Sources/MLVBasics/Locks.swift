#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A lock file in git's style (`lockfile.h`): `NAME.lock` created with
/// `O_CREAT|O_EXCL`, holding the owner's pid, host and start time. Whoever creates it
/// holds the lock; releasing removes it. A lock left by a killed process is reported
/// with its owner so a person can decide; it is never broken silently.
public final class LockFile {
    public let path: String
    private var held = true

    /// Who holds a lock, read back from the lock file.
    public struct Owner: Sendable, Equatable, CustomStringConvertible {
        public var pid: Int32
        public var host: String
        public var since: Int64

        public var description: String {
            let age = max(0, Int64(time(nil)) - since)
            return "pid \(pid) on \(host), \(age)s ago"
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        /// Someone else holds the lock; `owner` is nil when the file could not be read.
        case held(path: String, owner: Owner?)
        case system(FileSystemError)

        public var description: String {
            switch self {
            case .held(let path, let owner):
                guard let owner else { return "'\(path)' is locked (its owner cannot be read)" }
                let stale = LockFile.isAlive(owner) ? "" : "; that process is no longer running, so the lock is stale: 'mlv unlock' removes it"
                return "'\(path)' is locked by \(owner)" + stale
            case .system(let e):
                return e.description
            }
        }
    }

    private init(path: String) {
        self.path = path
    }

    /// Creates `path` exclusively, retrying for up to `timeoutMilliseconds` while another
    /// process holds it; at once when the owner it names is a process of this host that
    /// no longer runs (a stale lock, which only `mlv unlock` removes).
    /// - Throws: `LockFile.Failure.held` naming the owner when it stays locked.
    public static func acquire(_ path: String, timeoutMilliseconds: Int = 5000) throws -> LockFile {
        let deadline = monotonicMilliseconds() + timeoutMilliseconds
        var delay: UInt32 = 1000
        while true {
            do {
                let fd = try FS.open(path, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
                let text = "\(getpid()) \(hostName()) \(time(nil))\n"
                try? FS.writeAll(fd, Array(text.utf8), path: path)
                FS.close(fd)
                return LockFile(path: path)
            } catch let e as FileSystemError where e.isExists {
                let current = owner(of: path)
                // A lock whose owner died will not be released: say so at once.
                if let current, current.host == hostName(), !isAlive(current) {
                    throw Failure.held(path: path, owner: current)
                }
                if monotonicMilliseconds() >= deadline {
                    throw Failure.held(path: path, owner: current)
                }
                usleep(delay)
                delay = min(delay * 2, 50_000)
            } catch {
                throw Failure.system(error as! FileSystemError)
            }
        }
    }

    /// Reads who holds the lock at `path`, if it can be read.
    public static func owner(of path: String) -> Owner? {
        guard let bytes = try? FS.readFile(path) else { return nil }
        let parts = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count >= 3, let pid = Int32(parts[0]), let since = Int64(parts[2]) else { return nil }
        return Owner(pid: pid, host: String(parts[1]), since: since)
    }

    /// True when `owner` is a process on this host that still runs. A process under that
    /// pid that started after the lock was taken is another process reusing the pid (after
    /// a reboot, say), so the owner is gone.
    public static func isAlive(_ owner: Owner) -> Bool {
        guard owner.host == hostName() else { return true }  // cannot tell: assume alive
        guard kill(owner.pid, 0) == 0 || errno == EPERM else { return false }
        if let started = processStartTime(owner.pid), started > owner.since + 2 { return false }
        return true
    }

    /// When process `pid` started, in seconds since the epoch, from Linux's `/proc`
    /// (field 22 of `/proc/PID/stat` in clock ticks after `btime` in `/proc/stat`); nil
    /// where that cannot be read.
    static func processStartTime(_ pid: Int32) -> Int64? {
        guard let stat = try? FS.readFileIfExists("/proc/\(pid)/stat"), let all = try? FS.readFileIfExists("/proc/stat") else {
            return nil
        }
        // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
        let text = String(decoding: stat, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        let hz = Int64(sysconf(Int32(_SC_CLK_TCK)))
        guard fields.count > 19, let ticks = Int64(fields[19]), hz > 0 else { return nil }
        let boot = String(decoding: all, as: UTF8.self).split(separator: "\n")
            .first { $0.hasPrefix("btime ") }.flatMap { Int64($0.dropFirst(6)) }
        return boot.map { $0 + ticks / hz }
    }

    /// Removes the lock file.
    public func release() {
        guard held else { return }
        held = false
        _ = Glibc.unlink(path)
    }

    deinit { release() }
}

/// An advisory `flock(2)` on a file: shared for writers that only add, exclusive for
/// gc. The kernel drops it when the process dies, so it can never be left stale.
public final class FileLock {
    public let path: String
    private let fd: Int32

    public enum Mode { case shared, exclusive }

    /// Opens (creating) `path` and waits until the lock is granted.
    /// - Throws: `FileSystemError` from `open` or `flock`.
    public init(_ path: String, mode: Mode) throws {
        self.path = path
        // Locked before `fd` is set: an initializer that throws once every stored
        // property is set runs `deinit`, which would close the descriptor a second time.
        fd = try Self.openLocked(path, mode)
    }

    private static func openLocked(_ path: String, _ mode: Mode) throws -> Int32 {
        let fd = try FS.open(path, O_RDWR | O_CREAT, mode: 0o644)
        do {
            try FaultInjection.check(.flock, path)
            while flock(fd, mode == .shared ? LOCK_SH : LOCK_EX) != 0 {
                if errno == EINTR { continue }
                throw FileSystemError(call: "flock", path: path, errno: errno)
            }
        } catch {
            FS.close(fd)
            throw error
        }
        return fd
    }

    deinit {
        _ = flock(fd, LOCK_UN)
        FS.close(fd)
    }
}

/// This machine's host name (`gethostname(3)`).
public func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Milliseconds on the monotonic clock.
public func monotonicMilliseconds() -> Int {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int(ts.tv_sec) * 1000 + Int(ts.tv_nsec) / 1_000_000
}

/// Nanoseconds since the epoch on the real-time clock.
public func wallClockNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}
