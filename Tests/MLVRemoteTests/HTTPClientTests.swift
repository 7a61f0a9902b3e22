import MLVBasics
import MLVTestSupport
import Testing

@testable import MLVRemote

@Suite("HTTPClient")
struct HTTPClientTests {
    static let fast = ConnectionTimeouts(connect: 1000, io: 1000)

    func endpoint(_ server: LoopbackServer) -> HTTPEndpoint {
        HTTPEndpoint(tls: false, host: "127.0.0.1", port: server.port)
    }

    @Test("Content-Length bodies both ways, and one connection carries many requests")
    func keepAlive() throws {
        let server = try LoopbackServer { request in
            .send(LoopbackServer.response(200, Array("\(request.method) \(request.target) \(request.body.count)".utf8),
                                          headers: [("ETag", "\"e\"")]))
        }
        let client = HTTPClient(timeouts: Self.fast)
        for i in 0..<5 {
            let response = try client.send(
                HTTPRequest(method: "PUT", target: "/k\(i)", body: .bytes([UInt8](repeating: 1, count: i * 1000)), idempotent: true),
                to: endpoint(server))
            #expect(response.status == 200)
            #expect(String(decoding: response.body, as: UTF8.self) == "PUT /k\(i) \(i * 1000)")
            #expect(response.header("ETag") == "\"e\"")
        }
        #expect(server.accepted.current == 1)
        #expect(client.connectionsOpened.current == 1)
    }

    @Test("chunked and read-to-close bodies")
    func framing() throws {
        let server = try LoopbackServer { request in
            if request.target == "/chunked" {
                return .send(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n".utf8))
            }
            return .sendAndClose(Array("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end".utf8))
        }
        let client = HTTPClient(timeouts: Self.fast)
        let chunked = try client.send(HTTPRequest(method: "GET", target: "/chunked", idempotent: true), to: endpoint(server))
        #expect(String(decoding: chunked.body, as: UTF8.self) == "hello world")
        let toClose = try client.send(HTTPRequest(method: "GET", target: "/close", idempotent: true), to: endpoint(server))
        #expect(String(decoding: toClose.body, as: UTF8.self) == "until the end")
        // The chunked response left the connection reusable; the close did not.
        _ = try client.send(HTTPRequest(method: "GET", target: "/chunked", idempotent: true), to: endpoint(server))
        #expect(server.accepted.current == 2)
    }

    @Test("a file streams up and a 2xx body streams down into a file; an error body stays in memory")
    func files() throws {
        let dir = try TemporaryDirectory(prefix: "mlv-http")
        let bytes = splitmix64Bytes(seed: 9, count: 3 << 20 | 7)
        try FS.atomicWrite(dir.appending("up"), bytes, durable: false)
        let server = try LoopbackServer { request in
            if request.method == "PUT" {
                return .send(LoopbackServer.response(200, Array(SHA256.hash(request.body).hex.utf8)))
            }
            if request.target == "/missing" { return .send(LoopbackServer.response(404, Array("<Error/>".utf8))) }
            return .send(LoopbackServer.response(200, bytes))
        }
        let client = HTTPClient(timeouts: Self.fast)
        let put = try client.send(
            HTTPRequest(method: "PUT", target: "/f", body: .file(path: dir.appending("up"), offset: 1000, length: 2 << 20), idempotent: true),
            to: endpoint(server))
        #expect(String(decoding: put.body, as: UTF8.self) == SHA256.hash(Array(bytes[1000..<(1000 + (2 << 20))])).hex)
        let get = try client.send(HTTPRequest(method: "GET", target: "/f", idempotent: true), to: endpoint(server),
                                  downloadTo: dir.appending("down"))
        #expect(get.bytesToFile == Int64(bytes.count))
        #expect(get.body.isEmpty)
        #expect(try FS.readFile(dir.appending("down")) == bytes)
        let missing = try client.send(HTTPRequest(method: "GET", target: "/missing", idempotent: true), to: endpoint(server),
                                      downloadTo: dir.appending("other"))
        #expect(missing.status == 404)
        #expect(missing.body == Array("<Error/>".utf8))
        #expect(!FS.exists(dir.appending("other")))
    }

    @Test("a kept-alive connection the server closed is replaced for an idempotent request")
    func serverClosedIdle() throws {
        let server = try LoopbackServer { _ in .sendAndClose(LoopbackServer.response(200, [1])) }  // no Connection: close header
        let client = HTTPClient(timeouts: Self.fast)
        for _ in 0..<3 {
            #expect(try client.send(HTTPRequest(method: "GET", target: "/", idempotent: true), to: endpoint(server)).body == [1])
        }
        #expect(server.accepted.current == 3)
    }

    @Test("an answer sent before the upload finished is returned instead of the broken pipe")
    func earlyAnswer() throws {
        let server = try LoopbackServer(readBodies: false) { _ in
            .sendAndClose(LoopbackServer.response(403, Array("<Error><Code>AccessDenied</Code></Error>".utf8)))
        }
        let client = HTTPClient(timeouts: Self.fast)
        let response = try client.send(
            HTTPRequest(method: "PUT", target: "/big", body: .bytes([UInt8](repeating: 0, count: 32 << 20)), idempotent: false),
            to: endpoint(server))
        #expect(response.status == 403)
        #expect(response.body == Array("<Error><Code>AccessDenied</Code></Error>".utf8))
    }

    @Test("a refused connect fails at once as unreachable")
    func refused() throws {
        let server = try LoopbackServer { _ in .hang }
        let port = server.port
        server.stop()
        let client = HTTPClient(timeouts: Self.fast)
        let start = monotonicMilliseconds()
        let error = #expect(throws: NetworkError.self) {
            try client.send(HTTPRequest(method: "GET", target: "/", idempotent: true),
                            to: HTTPEndpoint(tls: false, host: "127.0.0.1", port: port))
        }
        #expect(error?.kind == .unreachable)
        #expect(error?.description.contains("127.0.0.1:\(port)") == true)
        #expect(monotonicMilliseconds() - start < 1000)
    }

    @Test("a server that accepts and never answers times out")
    func readTimeout() throws {
        let server = try LoopbackServer { _ in .hang }
        let client = HTTPClient(timeouts: ConnectionTimeouts(connect: 1000, io: 300))
        let start = monotonicMilliseconds()
        let error = #expect(throws: NetworkError.self) {
            try client.send(HTTPRequest(method: "GET", target: "/", idempotent: true), to: endpoint(server))
        }
        #expect(error?.kind == .timedOut)
        #expect(monotonicMilliseconds() - start < 3000)
    }

    @Test("a connect nobody completes (full accept queue) times out")
    func blackholedConnect() throws {
        let server = try LoopbackServer(acceptConnections: false) { _ in .hang }
        // Fill the accept queue so further SYNs are dropped.
        var fillers: [TCPConnection] = []
        for _ in 0..<4 {
            if let c = try? TCPConnection.connect(host: "127.0.0.1", port: server.port, timeouts: ConnectionTimeouts(connect: 200, io: 200)) {
                fillers.append(c)
            }
        }
        let client = HTTPClient(timeouts: ConnectionTimeouts(connect: 300, io: 300))
        let start = monotonicMilliseconds()
        let error = #expect(throws: NetworkError.self) {
            try client.send(HTTPRequest(method: "GET", target: "/", idempotent: true), to: endpoint(server))
        }
        #expect(error?.kind == .timedOut)
        #expect(monotonicMilliseconds() - start < 3000)
        withExtendedLifetime(fillers) {}
    }

    @Test("endpoint URLs", arguments: [
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"), ("https://s3.amazonaws.com/", "https://s3.amazonaws.com"),
        ("https://h:443", "https://h"), ("http://[::1]:8080", "http://[::1]:8080"),
    ])
    func endpoints(_ pair: (String, String)) throws {
        #expect(try #require(HTTPEndpoint(url: pair.0)).description == pair.1)
    }

    @Test("bad endpoint URLs", arguments: ["ftp://h", "http://", "http://h/path", "http://h:0", "http://h:99999", "http://u@h", "h:80"])
    func badEndpoints(_ url: String) {
        #expect(HTTPEndpoint(url: url) == nil)
    }
}
