import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// A scripted HTTP server on 127.0.0.1 for client tests: each request on each connection
/// is answered with the raw bytes `respond` returns (or none, to hang or close).
public final class LoopbackServer: @unchecked Sendable {
    /// A request as received: method, target, lowercased headers and body.
    public struct Request: Sendable {
        public var method: String
        public var target: String
        public var headers: [String: String]
        public var body: [UInt8]
    }

    /// What to do with one request.
    public enum Reply: Sendable {
        /// Send these bytes and keep the connection open for the next request.
        case send([UInt8])
        /// Send these bytes, then close the connection.
        case sendAndClose([UInt8])
        /// Send nothing and keep the connection open (the client must time out).
        case hang
    }

    public let port: Int
    private let listener: Int32
    private let readBodies: Bool
    private let respond: @Sendable (Request) -> Reply
    /// Connections accepted so far.
    public let accepted = AtomicCounter()
    private let stopped = AtomicCounter()

    /// Listens on a free loopback port; `backlog` 0 with no `accept` (see `acceptConnections`)
    /// makes a blackhole once the queue is full.
    /// With `readBodies` false, a request is answered as soon as its head arrived, the way
    /// a server refuses an upload without reading it.
    public init(acceptConnections: Bool = true, readBodies: Bool = true, respond: @escaping @Sendable (Request) -> Reply) throws {
        self.respond = respond
        self.readBodies = readBodies
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.listener = listener
        var one: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(4))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, acceptConnections ? 16 : 0) == 0 else {
            throw FileSystemError(call: "bind", path: "127.0.0.1", errno: errno)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        if acceptConnections {
            detachThread { [self] in acceptLoop() }
        }
    }

    deinit {
        stop()
    }

    /// Stops accepting; open connections end when their clients close them.
    public func stop() {
        if stopped.add(1) == 1 {
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
    }

    private func acceptLoop() {
        while stopped.current == 0 {
            let fd = acceptCloseOnExec(listener)
            if fd < 0 { if errno == EINTR { continue } else { return } }
            accepted.add(1)
            detachThread { [self] in serve(fd) }
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        var buffer: [UInt8] = []
        while true {
            guard let request = readRequest(fd, &buffer) else { return }
            switch respond(request) {
            case .send(let bytes):
                guard sendAll(fd, bytes) else { return }
            case .sendAndClose(let bytes):
                _ = sendAll(fd, bytes)
                return
            case .hang:
                var scratch = [UInt8](repeating: 0, count: 1024)
                while recv(fd, &scratch, scratch.count, 0) > 0 {}
                return
            }
        }
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            offset += n
        }
        return true
    }

    private func readRequest(_ fd: Int32, _ buffer: inout [UInt8]) -> Request? {
        let terminator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            if let range = find(terminator, in: buffer) { headEnd = range; break }
            guard receive(fd, &buffer) else { return nil }
        }
        let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
        buffer.removeFirst(headEnd! + 4)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst().split(separator: " ")
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters()
        }
        let length = readBodies ? Int(headers["content-length"] ?? "0") ?? 0 : 0
        while buffer.count < length {
            guard receive(fd, &buffer) else { return nil }
        }
        let body = Array(buffer[0..<length])
        buffer.removeFirst(length)
        return Request(method: String(requestLine[0]), target: String(requestLine[1]), headers: headers, body: body)
    }

    private func receive(_ fd: Int32, _ buffer: inout [UInt8]) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        if n <= 0 { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    private func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i..<(i + needle.count)].elementsEqual(needle) {
            return i
        }
        return nil
    }

    /// `HTTP/1.1 <status>` with `Content-Length` and `body`, plus `headers`.
    public static func response(_ status: Int, _ body: [UInt8] = [], headers: [(String, String)] = []) -> [UInt8] {
        var head = "HTTP/1.1 \(status) Status\r\nContent-Length: \(body.count)\r\n"
        for (n, v) in headers { head += "\(n): \(v)\r\n" }
        return Array((head + "\r\n").utf8) + body
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters() -> String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

/// Runs `body` on a new detached thread (`pthread_create`): the server's loops block in
/// `accept` and `recv`, which must not starve Dispatch's shared pool.
private func detachThread(_ body: @escaping @Sendable () -> Void) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        let box = Unmanaged<AnyObject>.fromOpaque(raw!).takeRetainedValue() as! Box
        box.body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed")
    pthread_detach(thread)
}

/// `accept4(2)` with SOCK_CLOEXEC (looked up at run time: it is declared only under
/// _GNU_SOURCE), so a child another test spawns meanwhile never inherits a connection
/// and keeps it open after the server closed it; `accept` + `fcntl` where it is missing.
private func acceptCloseOnExec(_ listener: Int32) -> Int32 {
    typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32
    if let symbol = dlsym(nil, "accept4") {
        return unsafeBitCast(symbol, to: Accept4.self)(listener, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
    }
    let fd = accept(listener, nil, nil)
    if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return fd
}
