import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// Local files a remote reads from (`upload`) or writes to (`download`), with
/// `FileSystemError` turned into a `RemoteError` naming the key and the local path.
enum RemoteFile {
    /// The whole local file.
    static func read(_ path: String, key: String, location: String) throws -> [UInt8] {
        do { return try FS.readFile(path) } catch { throw wrap(error, key: key, location: location) }
    }

    /// Creates or truncates `path` and writes `bytes`.
    static func write(_ bytes: [UInt8], to path: String, key: String, location: String) throws {
        do {
            let fd = try FS.open(path, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
            defer { FS.close(fd) }
            try FS.writeAll(fd, bytes, path: path)
        } catch {
            throw wrap(error, key: key, location: location)
        }
    }

    /// `error` as a `RemoteError`: itself when it already is one.
    static func wrap(_ error: Error, key: String?, location: String) -> RemoteError {
        if let e = error as? RemoteError { return e }
        return RemoteError(.failed, location: location, key: key, "\(error)")
    }
}
