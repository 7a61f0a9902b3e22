#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call on a path: which call, which path, and the errno it returned.
public struct FileSystemError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The C call that failed, e.g. `open`, `rename`, `fsync`.
    public var call: String
    public var path: String
    public var errno: Int32

    public init(call: String, path: String, errno: Int32) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    public var description: String {
        "\(call) '\(path)': \(String(cString: strerror(errno)))"
    }

    public var isNotFound: Bool { errno == ENOENT || errno == ENOTDIR }
    public var isExists: Bool { errno == EEXIST }
}
