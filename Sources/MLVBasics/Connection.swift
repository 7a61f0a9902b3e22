import CSSL
#if canImport(Glibc)
import Glibc
#endif

/// A byte stream to a server: a TCP socket, or TLS over one. Used by one thread at a time.
public protocol Connection: AnyObject {
    /// `host:port`, for messages.
    var endpoint: String { get }
    /// Reads what is available, up to `buffer.count` bytes; 0 at end of stream.
    /// - Throws: `NetworkError` (`.timedOut` after the read timeout, `.closed` on reset).
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Writes all of `bytes`.
    /// - Throws: `NetworkError`.
    func write(_ bytes: UnsafeRawBufferPointer) throws
    /// True when the peer has closed the connection or sent bytes nobody asked for, so
    /// an idle connection must not be reused (a zero-timeout `poll`).
    var isStale: Bool { get }
}

extension Connection {
    /// Writes all of `bytes`.
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }
}

/// Timeouts for one connection, in milliseconds.
public struct ConnectionTimeouts: Sendable, Equatable {
    /// How long `connect` may take (per resolved address).
    public var connect: Int
    /// How long one read or write may wait for the peer.
    public var io: Int

    public init(connect: Int = 10_000, io: Int = 60_000) {
        self.connect = connect
        self.io = io
    }
}

/// A TCP connection (`socket`, non-blocking `connect` with `poll` for the timeout, then
/// blocking `recv`/`send` with `SO_RCVTIMEO`/`SO_SNDTIMEO`).
public final class TCPConnection: Connection {
    public let endpoint: String
    /// The socket descriptor.
    public let fd: Int32

    private init(fd: Int32, endpoint: String) {
        self.fd = fd
        self.endpoint = endpoint
    }

    deinit { Glibc.close(fd) }

    /// Resolves `host` (`getaddrinfo`) and connects to the first address that answers.
    /// - Throws: `NetworkError.unreachable` (refused, no route, unknown host) or
    ///   `.timedOut` when no address answered within `timeouts.connect`.
    public static func connect(host: String, port: Int, timeouts: ConnectionTimeouts) throws -> TCPConnection {
        let endpoint = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw NetworkError(.unreachable, endpoint: endpoint, "cannot resolve host: \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = NetworkError(.unreachable, endpoint: endpoint, "no address")
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let ai = node {
            node = ai.pointee.ai_next
            do {
                let fd = try connectOne(ai.pointee, endpoint: endpoint, timeouts: timeouts)
                return TCPConnection(fd: fd, endpoint: endpoint)
            } catch let e as NetworkError {
                lastError = e
            }
        }
        throw lastError
    }

    private static func connectOne(_ ai: addrinfo, endpoint: String, timeouts: ConnectionTimeouts) throws -> Int32 {
        let fd = socket(ai.ai_family, ai.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), ai.ai_protocol)
        guard fd >= 0 else { throw NetworkError(.unreachable, endpoint: endpoint, call: "socket", errno: errno) }
        var ok = false
        defer { if !ok { Glibc.close(fd) } }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        if Glibc.connect(fd, ai.ai_addr, ai.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else {
                throw NetworkError(.unreachable, endpoint: endpoint, call: "connect", errno: errno)
            }
            let deadline = monotonicMilliseconds() + timeouts.connect
            while true {
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let left = deadline - monotonicMilliseconds()
                if left <= 0 {
                    throw NetworkError(.timedOut, endpoint: endpoint, "connect timed out after \(timeouts.connect) ms")
                }
                let n = poll(&pfd, 1, Int32(left))
                if n < 0 && errno == EINTR { continue }
                if n < 0 { throw NetworkError(.unreachable, endpoint: endpoint, call: "poll", errno: errno) }
                if n > 0 { break }
            }
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
            if soError != 0 {
                throw NetworkError(.unreachable, endpoint: endpoint, call: "connect", errno: soError)
            }
        }
        _ = fcntl(fd, F_SETFL, flags)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: timeouts.io / 1000, tv_usec: (timeouts.io % 1000) * 1000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        ok = true
        return fd
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw Self.ioError(errno, endpoint: endpoint, call: "recv")
        }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 {
                if errno == EINTR { continue }
                throw Self.ioError(errno, endpoint: endpoint, call: "send")
            }
            offset += n
        }
    }

    public var isStale: Bool {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&pfd, 1, 0) != 0
    }

    static func ioError(_ code: Int32, endpoint: String, call: String) -> NetworkError {
        if code == EAGAIN || code == EWOULDBLOCK {
            return NetworkError(.timedOut, endpoint: endpoint, "\(call) timed out")
        }
        return NetworkError(.closed, endpoint: endpoint, call: call, errno: code)
    }
}

/// TLS over a `TCPConnection` (OpenSSL's libssl): the system's trusted certificates, or
/// the PEM bundle `caFile`; the server's certificate must name `host`; TLS 1.2 or later.
public final class TLSConnection: Connection {
    public let endpoint: String
    private let tcp: TCPConnection
    private let ssl: OpaquePointer

    /// Connects, then runs the TLS handshake with SNI and host-name verification.
    /// - Throws: `NetworkError` (`.tls` naming the verification failure).
    public init(host: String, port: Int, timeouts: ConnectionTimeouts, caFile: String? = nil) throws {
        tcp = try TCPConnection.connect(host: host, port: port, timeouts: timeouts)
        endpoint = tcp.endpoint
        let context = try TLSContexts.shared.context(caFile: caFile, endpoint: tcp.endpoint)
        guard let ssl = SSL_new(context) else {
            throw NetworkError(.tls, endpoint: tcp.endpoint, "SSL_new: \(TLSContexts.lastError())")
        }
        self.ssl = ssl
        SSL_set_fd(ssl, tcp.fd)
        var address = in6_addr()
        let isAddress = inet_pton(AF_INET, host, &address) == 1 || inet_pton(AF_INET6, host, &address) == 1
        if isAddress {
            _ = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
        } else {
            _ = mlv_ssl_set_sni(ssl, host)
            _ = SSL_set1_host(ssl, host)
        }
        ERR_clear_error()
        if withoutSIGPIPE({ SSL_connect(ssl) }) != 1 {
            let verify = SSL_get_verify_result(ssl)
            let reason = verify != X509_V_OK
                ? "certificate not accepted: " + String(cString: X509_verify_cert_error_string(verify))
                : TLSContexts.lastError()
            throw NetworkError(.tls, endpoint: tcp.endpoint, "TLS handshake failed: \(reason)")
        }
    }

    deinit { SSL_free(ssl) }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        ERR_clear_error()
        let n = withoutSIGPIPE { SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max)))) }
        if n > 0 { return Int(n) }
        return try fail(n, call: "SSL_read", zeroIsEnd: true)
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            ERR_clear_error()
            let n = withoutSIGPIPE { SSL_write(ssl, bytes.baseAddress! + offset, Int32(min(bytes.count - offset, 1 << 20))) }
            if n > 0 { offset += Int(n); continue }
            _ = try fail(n, call: "SSL_write", zeroIsEnd: false)
        }
    }

    public var isStale: Bool { SSL_pending(ssl) > 0 || tcp.isStale }

    private func fail(_ result: Int32, call: String, zeroIsEnd: Bool) throws -> Int {
        let code = errno
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_ZERO_RETURN where zeroIsEnd:
            return 0
        case SSL_ERROR_SYSCALL:
            if code == 0 && zeroIsEnd { return 0 }  // EOF without close_notify
            throw TCPConnection.ioError(code, endpoint: endpoint, call: call)
        default:
            throw NetworkError(.closed, endpoint: endpoint, "\(call): \(TLSContexts.lastError())")
        }
    }
}

/// One `SSL_CTX` per CA bundle, made once and shared by every connection.
final class TLSContexts: @unchecked Sendable {
    static let shared = TLSContexts()
    private let contexts = Locked<[String: OpaquePointer]>([:])

    func context(caFile: String?, endpoint: String) throws -> OpaquePointer {
        try contexts.withLock { cache in
            if let c = cache[caFile ?? ""] { return c }
            guard let c = SSL_CTX_new(TLS_client_method()) else {
                throw NetworkError(.tls, endpoint: endpoint, "SSL_CTX_new: \(Self.lastError())")
            }
            _ = mlv_ssl_ctx_min_tls12(c)
            SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nil)
            if let caFile {
                guard SSL_CTX_load_verify_locations(c, caFile, nil) == 1 else {
                    SSL_CTX_free(c)
                    throw NetworkError(.tls, endpoint: endpoint, "cannot load CA bundle '\(caFile)': \(Self.lastError())")
                }
            } else {
                SSL_CTX_set_default_verify_paths(c)
            }
            cache[caFile ?? ""] = c
            return c
        }
    }

    /// OpenSSL's most recent error as text, or "unknown error".
    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "unknown error" }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
