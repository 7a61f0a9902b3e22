#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file mapped read-only into memory (`mmap(2)`), unmapped when released.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let count: Int
    private let base: UnsafeMutableRawPointer?

    /// Maps the file at `path`.
    /// - Throws: `FileSystemError` from `open`, `fstat` or `mmap`.
    public convenience init(path: String) throws {
        let fd = try FS.open(path, O_RDONLY)
        defer { FS.close(fd) }
        try self.init(descriptor: fd, path: path)
    }

    /// Maps the open file `fd` (which the caller keeps and closes); `path` names it in errors.
    /// - Throws: `FileSystemError` from `fstat` or `mmap`.
    public init(descriptor fd: Int32, path: String) throws {
        self.path = path
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileSystemError(call: "fstat", path: path, errno: errno) }
        count = Int(st.st_size)
        if count == 0 {
            base = nil
            return
        }
        try FaultInjection.check(.read, path)
        let p = mmap(nil, count, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw FileSystemError(call: "mmap", path: path, errno: errno) }
        _ = madvise(p, count, MADV_SEQUENTIAL)
        base = p
    }

    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: count)
    }

    deinit {
        if let base { munmap(base, count) }
    }
}
