import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// Where HTTP requests go: scheme, host and port.
public struct HTTPEndpoint: Hashable, Sendable, CustomStringConvertible {
    public var tls: Bool
    public var host: String
    public var port: Int

    public init(tls: Bool, host: String, port: Int? = nil) {
        self.tls = tls
        self.host = host
        self.port = port ?? (tls ? 443 : 80)
    }

    /// Parses `http://host[:port]` or `https://host[:port]` (a trailing `/` is allowed, a
    /// path is not); nil when it is neither.
    public init?(url: String) {
        let tls: Bool
        var rest: Substring
        if url.hasPrefix("https://") { tls = true; rest = url.dropFirst(8) }
        else if url.hasPrefix("http://") { tls = false; rest = url.dropFirst(7) }
        else { return nil }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@") else { return nil }
        var host = rest
        var port: Int?
        if rest.hasPrefix("[") {  // [ipv6]:port
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let p = Int(after.dropFirst()) else { return nil }
                port = p
            }
        } else if let colon = rest.lastIndex(of: ":") {
            guard let p = Int(rest[rest.index(after: colon)...]) else { return nil }
            host = rest[..<colon]
            port = p
        }
        if let port, !(1...65535).contains(port) { return nil }
        guard !host.isEmpty else { return nil }
        self.init(tls: tls, host: String(host), port: port)
    }

    /// The `Host` header: the host, with the port when it is not the scheme's default.
    public var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == (tls ? 443 : 80) ? h : "\(h):\(port)"
    }

    public var description: String { (tls ? "https://" : "http://") + hostHeader }
}

/// What a request sends after its headers.
public enum HTTPBody: Sendable {
    case none
    case bytes([UInt8])
    /// `length` bytes of a local file from `offset`, streamed.
    case file(path: String, offset: Int64, length: Int64)

    var length: Int64 {
        switch self {
        case .none: return 0
        case .bytes(let b): return Int64(b.count)
        case .file(_, _, let length): return length
        }
    }
}

/// An HTTP/1.1 request. `target` is the request-target as sent: the percent-encoded path
/// and query (`/bucket/key?list-type=2`).
public struct HTTPRequest: Sendable {
    public var method: String
    public var target: String
    /// Header names as given; `Host` and `Content-Length` are added by the client.
    public var headers: [(String, String)]
    public var body: HTTPBody
    /// Safe to send twice (GET, HEAD, unconditional PUT, DELETE): the client then retries
    /// once when a kept-alive connection turns out closed.
    public var idempotent: Bool

    public init(method: String, target: String, headers: [(String, String)] = [], body: HTTPBody = .none, idempotent: Bool) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        self.idempotent = idempotent
    }
}

/// A response: status, headers (names lowercased) and the body, unless it went to a file.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Bytes written to the file a download asked for (0 when the body went to `body`).
    public var bytesToFile: Int64

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.0 == lower }?.1
    }
}

/// A small HTTP/1.1 client over `TCPConnection`/`TLSConnection`: keeps connections alive
/// and reuses them per endpoint, sends `Content-Length` bodies streamed from memory or a
/// file, reads `Content-Length`, chunked and read-to-close bodies into memory or a file.
/// Safe to use from several threads; each request holds one connection.
public final class HTTPClient: Sendable {
    public let timeouts: ConnectionTimeouts
    /// A PEM bundle of trusted certificates instead of the system's (`AWS_CA_BUNDLE`).
    public let caFile: String?
    private let idle = Locked<[HTTPEndpoint: [UncheckedSendable<any Connection>]]>([:])
    /// Connections opened so far (for tests of keep-alive).
    public let connectionsOpened = AtomicCounter()

    public init(timeouts: ConnectionTimeouts = ConnectionTimeouts(), caFile: String? = nil) {
        self.timeouts = timeouts
        self.caFile = caFile
    }

    /// Sends `request` and reads the response. When `downloadTo` is given and the status
    /// is 2xx, the body is streamed into that file (created or truncated) instead of memory.
    /// - Throws: `NetworkError` when the endpoint cannot be reached or the connection fails;
    ///   `FileSystemError` for the local file.
    public func send(_ request: HTTPRequest, to endpoint: HTTPEndpoint, downloadTo: String? = nil) throws -> HTTPResponse {
        while let reused = takeIdle(endpoint) {
            do {
                return try exchange(request, on: reused, endpoint: endpoint, downloadTo: downloadTo)
            } catch let failure as ExchangeFailure {
                // A kept-alive connection closed before any answer: the server most likely
                // closed it while idle. Resend on another unless the server may have acted
                // on it. A timeout is not retried: the server is slow, not gone.
                if failure.error.kind == .closed && (request.idempotent || !failure.sentRequest) { continue }
                throw failure.error
            }
        }
        let connection = try connect(endpoint)
        do {
            return try exchange(request, on: connection, endpoint: endpoint, downloadTo: downloadTo)
        } catch let failure as ExchangeFailure {
            throw failure.error
        }
    }

    // MARK: connections

    private func connect(_ endpoint: HTTPEndpoint) throws -> any Connection {
        connectionsOpened.add(1)
        if endpoint.tls {
            return try TLSConnection(host: endpoint.host, port: endpoint.port, timeouts: timeouts, caFile: caFile)
        }
        return try TCPConnection.connect(host: endpoint.host, port: endpoint.port, timeouts: timeouts)
    }

    private func takeIdle(_ endpoint: HTTPEndpoint) -> (any Connection)? {
        while let c = idle.withLock({ $0[endpoint]?.popLast() }) {
            if !c.value.isStale { return c.value }
        }
        return nil
    }

    private func giveBack(_ connection: any Connection, _ endpoint: HTTPEndpoint) {
        idle.withLock { pool in
            var list = pool[endpoint] ?? []
            if list.count < 16 { list.append(UncheckedSendable(connection)) }
            pool[endpoint] = list
        }
    }

    /// A connection failure before any response byte, with whether the whole request
    /// had been sent (so the server may have acted on it).
    private struct ExchangeFailure: Error {
        var error: NetworkError
        var sentRequest: Bool
    }

    private func exchange(_ request: HTTPRequest, on connection: any Connection, endpoint: HTTPEndpoint,
                          downloadTo: String?) throws -> HTTPResponse {
        var sent = false
        var reader = HTTPReader(connection)
        do {
            try writeHead(request, endpoint: endpoint, on: connection)
            do {
                try writeBody(request.body, on: connection)
            } catch let e as NetworkError {
                // A server may answer before the body is all sent (403, 413) and close:
                // that answer says more than the broken pipe.
                if let early = try? readResponse(&reader, request, downloadTo: nil) { return early.0 }
                throw e
            }
            sent = true
            guard try reader.waitForHead() else {
                throw NetworkError(.closed, endpoint: connection.endpoint, "connection closed before the response")
            }
        } catch let e as NetworkError {
            throw ExchangeFailure(error: e, sentRequest: sent)
        }
        let (response, reusable) = try readResponse(&reader, request, downloadTo: downloadTo)
        if reusable { giveBack(connection, endpoint) }
        return response
    }

    /// Reads a whole response (skipping 1xx ones); returns it and whether the connection
    /// can carry another request.
    private func readResponse(_ reader: inout HTTPReader, _ request: HTTPRequest, downloadTo: String?) throws -> (HTTPResponse, Bool) {
        var (status, headers, version) = try reader.readHead()
        while (100..<200).contains(status) {  // 100 Continue and friends: read on
            (status, headers, version) = try reader.readHead()
        }
        var response = HTTPResponse(status: status, headers: headers, body: [], bytesToFile: 0)
        let reusable = try reader.readBody(
            of: &response, method: request.method, version: version,
            to: (200..<300).contains(status) ? downloadTo : nil)
        return (response, reusable)
    }

    private func writeHead(_ request: HTTPRequest, endpoint: HTTPEndpoint, on connection: any Connection) throws {
        var head = "\(request.method) \(request.target) HTTP/1.1\r\nHost: \(endpoint.hostHeader)\r\n"
        for (name, value) in request.headers {
            head += "\(name): \(value)\r\n"
        }
        if request.body.length > 0 || ["PUT", "POST"].contains(request.method) {
            head += "Content-Length: \(request.body.length)\r\n"
        }
        head += "\r\n"
        try connection.write(Array(head.utf8))
    }

    private func writeBody(_ body: HTTPBody, on connection: any Connection) throws {
        switch body {
        case .none:
            return
        case .bytes(let bytes):
            try connection.write(bytes)
        case .file(let path, let offset, let length):
            let fd = try FS.open(path, O_RDONLY)
            defer { FS.close(fd) }
            let size = 1 << 20
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
            defer { buffer.deallocate() }
            var done: Int64 = 0
            while done < length {
                let want = Int(min(Int64(size), length - done))
                let n = try FS.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]),
                                     at: Int(offset + done), path: path)
                guard n == want else {
                    throw FileSystemError(call: "pread", path: path, errno: EIO)  // file shrank while sending
                }
                try connection.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
                done += Int64(n)
            }
        }
    }
}

/// Reads one response from a connection through a buffer.
struct HTTPReader {
    private let connection: any Connection
    private var buffer: [UInt8] = []
    private var start = 0
    /// Where reads land: once per reader, and body bytes go from here straight to their sink.
    private var scratch = [UInt8](repeating: 0, count: 256 << 10)
    private static let maxHead = 64 << 10

    init(_ connection: any Connection) {
        self.connection = connection
    }

    private var available: Int { buffer.count - start }

    /// Reads until the first response byte arrives; false when the peer closed first.
    /// A failure here means the server never answered (see `HTTPClient.send`'s retry).
    mutating func waitForHead() throws -> Bool {
        if available > 0 { return true }
        return try fill()
    }

    /// Reads more bytes into `buffer`; false at end of stream.
    private mutating func fill() throws -> Bool {
        if start > 0 && start == buffer.count { buffer.removeAll(keepingCapacity: true); start = 0 }
        let n = try readScratch(max: scratch.count)
        if n == 0 { return false }
        buffer.append(contentsOf: scratch[0..<n])
        return true
    }

    /// Reads up to `max` bytes into `scratch`; 0 at end of stream.
    private mutating func readScratch(max: Int) throws -> Int {
        let c = connection
        return try scratch.withUnsafeMutableBytes { try c.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<max])) }
    }

    private func malformed(_ what: String) -> NetworkError {
        NetworkError(.closed, endpoint: connection.endpoint, "malformed HTTP response: \(what)")
    }

    /// One CRLF-terminated line, without the CRLF.
    private mutating func readLine() throws -> String {
        var scanned = start
        while true {
            if let i = buffer[scanned...].firstIndex(of: UInt8(ascii: "\n")) {
                var end = i
                if end > start && buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                let line = String(decoding: buffer[start..<end], as: UTF8.self)
                start = i + 1
                return line
            }
            scanned = buffer.count
            if available > Self.maxHead { throw malformed("a header line is longer than 64 KiB") }
            guard try fill() else {
                throw NetworkError(.closed, endpoint: connection.endpoint, "connection closed before the response was complete")
            }
        }
    }

    /// Status line and headers.
    mutating func readHead() throws -> (Int, [(String, String)], String) {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw malformed("status line '\(statusLine.prefix(80))'")
        }
        var headers: [(String, String)] = []
        var total = 0
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            total += line.utf8.count
            if total > Self.maxHead { throw malformed("headers longer than 64 KiB") }
            guard let colon = line.firstIndex(of: ":") else { throw malformed("header line '\(line.prefix(80))'") }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces()
            headers.append((name, value))
        }
        return (status, headers, String(parts[0]))
    }

    /// Reads the body into `response.body` or the file `path`; returns whether the
    /// connection can carry another request.
    mutating func readBody(of response: inout HTTPResponse, method: String, version: String, to path: String?) throws -> Bool {
        let connectionHeader = response.header("connection")?.lowercased() ?? ""
        var reusable = version == "HTTP/1.1" ? !connectionHeader.contains("close") : connectionHeader.contains("keep-alive")
        var sink = try BodySink(path: path)
        defer { sink.close() }
        if method == "HEAD" || response.status == 204 || response.status == 304 {
            // no body
        } else if response.header("transfer-encoding")?.lowercased().contains("chunked") == true {
            while true {
                let sizeLine = try readLine()
                let hex = sizeLine.split(separator: ";").first.map { $0.trimmingSpaces() } ?? ""
                guard let size = Int(hex, radix: 16), size >= 0 else { throw malformed("chunk size '\(sizeLine.prefix(40))'") }
                if size == 0 { break }
                try copy(Int64(size), into: &sink)
                guard try readLine().isEmpty else { throw malformed("chunk not followed by CRLF") }
            }
            while try !readLine().isEmpty {}  // trailers
        } else if let lengthText = response.header("content-length") {
            guard let length = Int64(lengthText), length >= 0 else { throw malformed("content-length '\(lengthText)'") }
            try copy(length, into: &sink)
        } else {
            reusable = false
            while true {
                if available > 0 {
                    try sink.write(buffer[start...])
                    start = buffer.count
                }
                guard try fill() else { break }
            }
        }
        if available > 0 { reusable = false }  // bytes nobody asked for: do not trust this connection
        response.body = sink.memory
        response.bytesToFile = sink.written
        return reusable
    }

    private mutating func copy(_ count: Int64, into sink: inout BodySink) throws {
        var left = count
        if sink.inMemory { sink.memory.reserveCapacity(Int(min(count, 1 << 30))) }
        while left > 0 {
            if available > 0 {
                let n = Int(min(Int64(available), left))
                try sink.write(buffer[start..<(start + n)])
                start += n
                left -= Int64(n)
                continue
            }
            // Never read past the body: the connection may carry the next response.
            let n = try readScratch(max: Int(min(Int64(scratch.count), left)))
            if n == 0 {
                throw NetworkError(.closed, endpoint: connection.endpoint,
                                   "connection closed with \(left) of \(count) body bytes unread")
            }
            try sink.write(scratch[0..<n])
            left -= Int64(n)
        }
    }
}

/// Where a response body goes: memory, or a local file.
private struct BodySink {
    var memory: [UInt8] = []
    var written: Int64 = 0
    private var fd: Int32 = -1
    private let path: String?

    init(path: String?) throws {
        self.path = path
        if let path { fd = try FS.open(path, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644) }
    }

    var inMemory: Bool { path == nil }

    mutating func write(_ bytes: ArraySlice<UInt8>) throws {
        if let path {
            try bytes.withUnsafeBytes { try FS.writeAll(fd, $0, path: path) }
            written += Int64(bytes.count)
        } else {
            memory.append(contentsOf: bytes)
        }
    }

    mutating func close() {
        if fd >= 0 { FS.close(fd); fd = -1 }
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
