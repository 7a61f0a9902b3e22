#if canImport(Glibc)
import Glibc
#endif

/// Reads of the kernel's pseudo-files (`/proc`) and `uname(2)`: the raw text, for
/// parsers elsewhere.
public enum SystemFiles {
    /// The whole content of a small pseudo-file, read until end of file (their size is
    /// reported as 0, and a read may return less than is there); nil when it cannot be
    /// opened (a process that has exited, a file another user owns, no `/proc`).
    public static func read(_ path: String, limit: Int = 1 << 22) -> [UInt8]? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        while out.count < limit {
            let n = buffer.withUnsafeMutableBytes { Pipes.read(fd, into: $0) }
            if n < 0 { return nil }
            if n == 0 { break }
            out.append(contentsOf: buffer[0..<n])
        }
        return out
    }

    /// `read` as text (invalid UTF-8 repaired).
    public static func text(_ path: String) -> String? {
        read(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The ids of the processes `/proc` lists now.
    public static func processIDs() -> [Int32] {
        guard let entries = try? FS.listDirectory("/proc") else { return [] }
        return entries.compactMap { e in e.name.first?.isNumber == true ? Int32(e.name) : nil }
    }

    /// `uname(2)`: (sysname, release, version, machine).
    public static func uname() -> (system: String, release: String, version: String, machine: String) {
        var u = utsname()
        guard Glibc.uname(&u) == 0 else { return ("unknown", "unknown", "unknown", "unknown") }
        func field<T>(_ value: inout T) -> String {
            withUnsafeBytes(of: &value) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
        return (field(&u.sysname), field(&u.release), field(&u.version), field(&u.machine))
    }

    /// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of `/proc/<pid>/stat` times.
    public static var clockTicks: Int { max(1, sysconf(Int32(_SC_CLK_TCK))) }

    /// The page size, the unit of `/proc/<pid>/stat` RSS.
    public static var pageSize: Int { max(1, sysconf(Int32(_SC_PAGESIZE))) }

    /// Whether an executable named `name` is on `PATH`.
    public static func onPath(_ name: String, path: String? = nil) -> Bool {
        let search = path ?? (getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin")
        for dir in search.split(separator: ":") where !dir.isEmpty {
            if access("\(dir)/\(name)", X_OK) == 0 { return true }
        }
        return false
    }

    /// Whether a process with this id exists on this host.
    public static func processExists(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }
}
