import MLVBasics
import MLVRemote
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A real S3 protocol server for tests: moto's `moto_server` on a free loopback port,
/// started once per test process and `Mode`, and stopped when the process exits.
///
/// `.authenticated` runs with IAM authentication on (`INITIAL_NO_AUTH_ACTION_COUNT=3`: the
/// three requests that create a user, its access key and its policy go unchecked), so
/// every later request must carry a valid SigV4 signature by that key. moto 5.2
/// re-encodes the URL before it checks a signature, so it refuses correctly signed
/// requests whose key or query holds `/`, `+`, `=`, `%`, `~`, `,`, `@`, `;`, `:` or `&`
/// (boto3's too); `.plain`, which accepts any signature, is for the conformance suite's
/// keys. `.tls` serves HTTPS with a self-signed certificate. In every mode moto handles
/// one request at a time (`serialiseRequests`): its own conditional writes are not atomic. The bucket `mlv-test` is
/// created in every mode. Tests that need the server skip, naming what to install, when
/// `moto_server` is not found (`MLV_MOTO_SERVER`, then `PATH`, then `~/.pyenv/shims` and
/// `~/.local/bin`).
public final class MotoServer: @unchecked Sendable {
    /// `http://127.0.0.1:PORT`.
    public let endpoint: String
    public let port: Int
    public let bucket = "mlv-test"
    /// An access key moto knows, allowed everything.
    public let credentials: AWSCredentials
    /// The PEM certificate to trust in `.tls` mode.
    public let certificate: String?
    private let process: ChildProcess
    private let scratch: String

    /// Why S3 tests skip when the server is missing.
    public static let missingMessage = "moto_server is not installed; install it with: pip install 'moto[server]' (scripts/prerequisites does)"

    /// The `moto_server` executable, or nil.
    public static let executable: String? = {
        var candidates: [String] = []
        if let env = getenv("MLV_MOTO_SERVER") { candidates.append(String(cString: env)) }
        if let path = getenv("PATH") {
            candidates += String(cString: path).split(separator: ":").map { "\($0)/moto_server" }
        }
        if let home = getenv("HOME").map({ String(cString: $0) }) {
            candidates += [home + "/.pyenv/shims/moto_server", home + "/.local/bin/moto_server"]
        }
        return candidates.first { access($0, X_OK) == 0 }
    }()

    public static var isInstalled: Bool { executable != nil }

    /// How a server runs.
    public enum Mode: Sendable, CaseIterable {
        /// Plain HTTP, any signature accepted: for the conformance suite.
        case plain
        /// Plain HTTP, every request's SigV4 signature checked against moto's IAM keys.
        case authenticated
        /// HTTPS with a self-signed certificate made by `openssl req` (`certificate`);
        /// needs the `openssl` command.
        case tls
    }

    private static let servers = Mutex<[Mode: Result<MotoServer, MotoError>]>([:])

    /// The process's server of this mode, started on first use (servers of different
    /// modes start independently).
    /// - Throws: `MotoError` when it is not installed or does not come up.
    public static func shared(_ mode: Mode = .plain) throws -> MotoServer {
        return try startLocks[mode]!.withLock { _ in
            if let done = servers.withLock({ $0[mode] }) { return try done.get() }
            let result = Result { () throws(MotoError) -> MotoServer in try MotoServer(mode) }
            servers.withLock { $0[mode] = result }
            if case .success(let server) = result {
                let first = running.withLock { list in
                    list.append(server)
                    return list.count == 1
                }
                if first { atexit { stopSharedAtExit() } }
            }
            return try result.get()
        }
    }

    /// One lock per mode, so two modes start in parallel and one mode starts once.
    private static let startLocks: [Mode: Locked<Void>] = Dictionary(uniqueKeysWithValues: Mode.allCases.map { ($0, Locked(())) })

    /// Why the server could not be used.
    public struct MotoError: Error, CustomStringConvertible {
        public var description: String
    }

    private init(_ mode: Mode) throws(MotoError) {
        guard let executable = Self.executable else { throw MotoError(description: Self.missingMessage) }
        let port = Self.freePort()
        self.port = port
        endpoint = (mode == .tls ? "https" : "http") + "://127.0.0.1:\(port)"
        do {
            scratch = try TemporaryDirectory.make(prefix: "mlv-moto")
            var arguments = ["-H", "127.0.0.1", "-p", "\(port)"]
            if mode == .tls {
                let made = try runProgram("/usr/bin/openssl", [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                ], in: scratch)
                guard made.status == 0 else { throw MotoError(description: "openssl req failed: \(made.stderr)") }
                certificate = scratch + "/cert.pem"
                arguments += ["-c", scratch + "/cert.pem", "-k", scratch + "/key.pem"]
            } else {
                certificate = nil
            }
            try FS.atomicWrite(scratch + "/sitecustomize.py", Array(Self.serialiseRequests.utf8), durable: false)
            let pathEnv = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
            var environment = ["PATH": FS.parent(of: executable) + ":" + pathEnv, "PYTHONPATH": scratch]
            if mode == .authenticated { environment["INITIAL_NO_AUTH_ACTION_COUNT"] = "3" }
            process = try ChildProcess(executable: executable, arguments: arguments, directory: scratch,
                                       environment: environment, timeout: 5)
        } catch let e as MotoError {
            throw e
        } catch {
            throw MotoError(description: "cannot start \(executable): \(error)")
        }
        let http = HTTPClient(timeouts: ConnectionTimeouts(connect: 500, io: 5000), caFile: certificate)
        let target = HTTPEndpoint(tls: mode == .tls, host: "127.0.0.1", port: port)
        let deadline = monotonicMilliseconds() + 30_000
        while true {
            if let r = try? http.send(HTTPRequest(method: "GET", target: "/moto-api/", idempotent: true), to: target), r.status < 500 { break }
            if monotonicMilliseconds() > deadline {
                kill(process.pid, SIGKILL)
                let result = process.wait()
                try? FS.removeTree(scratch)
                throw MotoError(description: "moto_server did not answer on port \(port) within 30 s: \(result.stderr.suffix(2000))")
            }
            usleep(100_000)
        }
        do {
            credentials = try Self.makeUser(http, target)
            let remote = try S3Remote(bucket: bucket, endpoint: endpoint, credentials: credentials, caFile: certificate)
            try remote.createBucket()
        } catch {
            kill(process.pid, SIGKILL)
            _ = process.wait()
            try? FS.removeTree(scratch)
            throw MotoError(description: "setting up moto_server failed: \(error)")
        }
    }

    /// moto checks a PUT's condition and then stores the object without a lock, on one
    /// thread per request, so two concurrent conditional PUTs can both pass; S3 decides
    /// them atomically. Loaded through `PYTHONPATH` as `sitecustomize`, this makes moto
    /// handle one request at a time, so its conditional writes are atomic as S3's are.
    static let serialiseRequests = """
        # Written by mlv's MotoServer (tests only): one request at a time, so moto's
        # conditional PUTs (check, then store) are atomic as S3's are.
        import threading
        try:
            from moto.moto_server.werkzeug_app import DomainDispatcherApplication
            _lock = threading.Lock()
            _call = DomainDispatcherApplication.__call__
            def _serialised(self, environ, start_response):
                with _lock:
                    return _call(self, environ, start_response)
            DomainDispatcherApplication.__call__ = _serialised
        except Exception:
            pass

        """

    /// A fresh, empty S3 remote: the shared bucket under a prefix no other test uses
    /// (or under `prefix`).
    public func remote(prefix: String? = nil, timeouts: ConnectionTimeouts = ConnectionTimeouts(connect: 2000, io: 30_000),
                       multipartThreshold: Int64 = 64 << 20, partSize: Int64 = 16 << 20,
                       credentials: AWSCredentials? = nil, listPageSize: Int = 1000) throws -> S3Remote {
        var random = SystemRandomNumberGenerator()
        let prefix = prefix ?? "t" + String(random.next() as UInt64, radix: 36)
        return try S3Remote(bucket: bucket, prefix: prefix, endpoint: endpoint, credentials: credentials ?? self.credentials,
                            timeouts: timeouts, caFile: certificate, multipartThreshold: multipartThreshold, partSize: partSize,
                            listPageSize: listPageSize)
    }

    /// Creates an IAM user with an access key and an allow-all policy (the three
    /// unauthenticated actions), and returns the key.
    private static func makeUser(_ http: HTTPClient, _ target: HTTPEndpoint) throws -> AWSCredentials {
        let bootstrap = SigV4(accessKeyID: "AKIAMLVBOOTSTRAP", secretAccessKey: "bootstrap", region: "us-east-1", service: "iam")
        func call(_ form: String) throws -> String {
            let body = Array((form + "&Version=2010-05-08").utf8)
            let amzDate = SigV4.amzDate(seconds: Int64(time(nil)))
            let hash = SHA256.hash(body).hex
            let headers = [("Host", target.hostHeader), ("Content-Type", "application/x-www-form-urlencoded"), ("x-amz-date", amzDate)]
            let auth = bootstrap.authorization(method: "POST", canonicalURI: "/", query: [], headers: headers, payloadHash: hash, amzDate: amzDate)
            let response = try http.send(
                HTTPRequest(method: "POST", target: "/", headers: Array(headers.dropFirst()) + [("Authorization", auth)],
                            body: .bytes(body), idempotent: false), to: target)
            let text = String(decoding: response.body, as: UTF8.self)
            guard response.status == 200 else { throw MotoError(description: "IAM \(form): HTTP \(response.status) \(text.prefix(500))") }
            return text
        }
        func element(_ tag: String, _ text: String) -> String? {
            guard let a = text.firstRange(of: "<\(tag)>"), let b = text[a.upperBound...].firstRange(of: "</\(tag)>") else { return nil }
            return String(text[a.upperBound..<b.lowerBound])
        }
        _ = try call("Action=CreateUser&UserName=mlv")
        let key = try call("Action=CreateAccessKey&UserName=mlv")
        let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
        _ = try call("Action=PutUserPolicy&UserName=mlv&PolicyName=all&PolicyDocument=" + SigV4.uriEncode(policy, encodeSlash: true))
        guard let id = element("AccessKeyId", key), let secret = element("SecretAccessKey", key) else {
            throw MotoError(description: "CreateAccessKey answered without a key: \(key.prefix(500))")
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, source: "moto IAM user 'mlv'")
    }

    /// A loopback port nobody listens on right now (bound, read, closed).
    public static func freePort() -> Int {
        // Close-on-exec: a child spawned meanwhile must not keep the port bound.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                _ = bind(fd, p, length)
                return getsockname(fd, p, &length)
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

private let running = Mutex<[MotoServer]>([])

/// Stops the shared servers when the test process exits (SIGTERM, then SIGKILL after 5 s)
/// and removes their scratch directories.
private func stopSharedAtExit() {
    let servers = running.withLock { $0 }
    for server in servers { server.terminate() }
    for server in servers { server.reap() }
}

extension MotoServer {
    fileprivate func terminate() { kill(process.pid, SIGTERM) }

    fileprivate func reap() {
        _ = process.wait()
        try? FS.removeTree(scratch)
    }
}
