import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under `$TMPDIR` (or `/tmp`) made with `mkdtemp(3)`, removed with
/// everything in it when the last reference goes away.
///
/// Removal calls `unlink`/`rmdir` directly rather than going through `FS`, so a fault
/// injector installed by a test never stops the cleanup.
public final class TemporaryDirectory: @unchecked Sendable {
    /// The absolute path of the directory.
    public let path: String

    /// Creates `<tmp>/<prefix>.XXXXXX` (in `/dev/shm` with `inMemory`, see `make`).
    /// - Throws: `FileSystemError` from `mkdtemp`.
    public init(prefix: String = "mlv-test", inMemory: Bool = false) throws {
        path = try Self.make(prefix: prefix, inMemory: inMemory)
    }

    /// Creates `<tmp>/<prefix>.XXXXXX` with `mkdtemp(3)` and returns its path; the caller
    /// removes it.
    /// - Throws: `FileSystemError` from `mkdtemp`.
    /// - Parameter inMemory: make it in `/dev/shm` (tmpfs) when that is writable, for tests
    ///   that run many fsyncs whose durability they do not test (process kills, injected
    ///   faults): on tmpfs an fsync costs nothing.
    public static func make(prefix: String, inMemory: Bool = false) throws -> String {
        var base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        if inMemory && access("/dev/shm", W_OK) == 0 && FS.isDirectory("/dev/shm") { base = "/dev/shm" }
        if base.isEmpty { base = "/tmp" }
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        var template = Array((base + "/" + prefix + ".XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw FileSystemError(call: "mkdtemp", path: base, errno: errno)
        }
        return String(cString: made)
    }

    /// `path` joined with a relative path.
    public func appending(_ relative: String) -> String {
        path + "/" + relative
    }

    /// Names of the entries directly in `relative` (or the directory itself), sorted.
    public func list(_ relative: String = "") throws -> [String] {
        try FS.listDirectory(relative.isEmpty ? path : appending(relative)).map(\.name).sorted()
    }

    deinit {
        Self.remove(path)
    }

    private static func remove(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for entry in (try? FS.listDirectory(path)) ?? [] {
                remove(path + "/" + entry.name)
            }
            _ = rmdir(path)
        } else {
            _ = unlink(path)
        }
    }
}
