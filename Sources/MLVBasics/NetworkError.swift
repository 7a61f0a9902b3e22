#if canImport(Glibc)
import Glibc
#endif

/// A failed network operation: which endpoint, what went wrong, and the errno or TLS
/// reason behind it.
public struct NetworkError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Name resolution or connect failed (refused, no route, unknown host).
        case unreachable
        /// Connect or a read/write did not finish within its timeout.
        case timedOut
        /// The peer closed or reset the connection.
        case closed
        /// The TLS handshake failed (certificate not trusted, wrong host name, protocol).
        case tls
    }

    public var kind: Kind
    /// `host:port`.
    public var endpoint: String
    public var message: String

    public init(_ kind: Kind, endpoint: String, _ message: String) {
        self.kind = kind
        self.endpoint = endpoint
        self.message = message
    }

    /// An error from a failed system call, with `strerror` of `code`.
    public init(_ kind: Kind, endpoint: String, call: String, errno code: Int32) {
        self.init(kind, endpoint: endpoint, "\(call): \(String(cString: strerror(code)))")
    }

    public var description: String { "\(endpoint): \(message)" }
}
