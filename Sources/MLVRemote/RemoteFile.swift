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

    /// The pieces of an upload, concatenated in memory.
    static func gather(_ pieces: [UploadPiece], key: String, location: String) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(pieces.reduce(0) { $0 + $1.length })
        do {
            for piece in pieces {
                switch piece {
                case .bytes(let b):
                    out += b
                case .file(let fd, let path, let offset, let length):
                    let start = out.count
                    out += repeatElement(0, count: length)
                    let n = try out.withUnsafeMutableBytes { b in
                        try FS.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: b[start..<(start + length)]), at: offset, path: path)
                    }
                    guard n == length else { throw FileSystemError(call: "pread", path: path, errno: EIO) }
                }
            }
        } catch {
            throw wrap(error, key: key, location: location)
        }
        return out
    }

    /// Appends the pieces of an upload to the open file `fd` (`path`), copying file
    /// ranges inside the kernel.
    static func write(_ pieces: [UploadPiece], to fd: Int32, path: String) throws {
        for piece in pieces {
            switch piece {
            case .bytes(let b):
                try FS.writeAll(fd, b, path: path)
            case .file(let source, let sourcePath, let offset, let length):
                let n = try FS.copyRange(from: source, sourcePath: sourcePath, offset: offset, length: length, to: fd, targetPath: path)
                guard n == length else { throw FileSystemError(call: "sendfile", path: sourcePath, errno: EIO) }
            }
        }
    }

    /// `error` as a `RemoteError`: itself when it already is one.
    static func wrap(_ error: Error, key: String?, location: String) -> RemoteError {
        if let e = error as? RemoteError { return e }
        return RemoteError(.failed, location: location, key: key, "\(error)")
    }
}
