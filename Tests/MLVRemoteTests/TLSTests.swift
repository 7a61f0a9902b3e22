import MLVBasics
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@testable import MLVRemote

/// HTTPS through `TLSConnection`, against `openssl s_server -www` with a self-signed
/// certificate for 127.0.0.1 made by `openssl req`.
@Suite("TLS", .serialized, .enabled(if: access("/usr/bin/openssl", X_OK) == 0, "the openssl command is not installed"))
struct TLSTests {
    final class Server {
        let dir: TemporaryDirectory
        let process: ChildProcess
        let port: Int
        var certificate: String { dir.appending("cert.pem") }

        init() throws {
            dir = try TemporaryDirectory(prefix: "mlv-tls")
            let made = try runProgram("/usr/bin/openssl", [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "1",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ], in: dir.path)
            guard made.status == 0 else { throw FileSystemError(call: "openssl req: \(made.stderr)", path: dir.path, errno: EIO) }
            port = MotoServer.freePort()
            process = try ChildProcess(executable: "/usr/bin/openssl", arguments: [
                "s_server", "-accept", "127.0.0.1:\(port)", "-cert", "cert.pem", "-key", "key.pem", "-www", "-quiet",
            ], directory: dir.path, timeout: 5)
            let deadline = monotonicMilliseconds() + 10_000
            while (try? TCPConnection.connect(host: "127.0.0.1", port: port, timeouts: ConnectionTimeouts(connect: 200, io: 200))) == nil {
                if monotonicMilliseconds() > deadline { break }
                usleep(20_000)
            }
        }

        deinit {
            // Not kill(pid): a test may have waited for it already, and its pid may now
            // belong to another test's child.
            process.send(SIGKILL)
            _ = process.wait()
        }
    }

    @Test("a certificate trusted through caFile works; the body arrives over TLS")
    func trusted() throws {
        let server = try Server()
        let client = HTTPClient(timeouts: ConnectionTimeouts(connect: 2000, io: 5000), caFile: server.certificate)
        let response = try client.send(HTTPRequest(method: "GET", target: "/", idempotent: true),
                                       to: HTTPEndpoint(tls: true, host: "127.0.0.1", port: server.port))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self).contains("s_server"))
    }

    @Test("an untrusted certificate fails the handshake, saying why")
    func untrusted() throws {
        let server = try Server()
        let client = HTTPClient(timeouts: ConnectionTimeouts(connect: 2000, io: 5000))
        let error = #expect(throws: NetworkError.self) {
            try client.send(HTTPRequest(method: "GET", target: "/", idempotent: true),
                            to: HTTPEndpoint(tls: true, host: "127.0.0.1", port: server.port))
        }
        #expect(error?.kind == .tls)
        #expect(error?.message.contains("certificate") == true, "\(String(describing: error))")
    }

    @Test("a certificate for another name fails the handshake")
    func wrongName() throws {
        let server = try Server()
        let client = HTTPClient(timeouts: ConnectionTimeouts(connect: 2000, io: 5000), caFile: server.certificate)
        let error = #expect(throws: NetworkError.self) {
            try client.send(HTTPRequest(method: "GET", target: "/", idempotent: true),
                            to: HTTPEndpoint(tls: true, host: "localhost", port: server.port))
        }
        #expect(error?.kind == .tls, "\(String(describing: error))")
        #expect(error?.message.contains("mismatch") == true, "\(String(describing: error))")
    }

    @Test("a TLS write to a peer that is gone throws instead of raising SIGPIPE")
    func peerGone() throws {
        // SIGPIPE is at its default (nothing in mlv or its tests changes it process-wide,
        // which tests running beside each other could not restore safely): a raised one
        // would end this test process.
        #expect(sigpipeIsAtItsDefault())
        let server = try Server()
        let connection = try TLSConnection(host: "127.0.0.1", port: server.port,
                                           timeouts: ConnectionTimeouts(connect: 2000, io: 5000), caFile: server.certificate)
        server.process.send(SIGKILL)
        _ = server.process.wait()
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        let error = #expect(throws: NetworkError.self) {
            for _ in 0..<64 { try connection.write(chunk) }
        }
        #expect(error?.kind == .closed)
    }
}
