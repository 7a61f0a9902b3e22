import MLVBasics
import MLVRemote
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A real S3 protocol server for tests: moto's `moto_server` on a free loopback port,
/// started once per test process and mode, and stopped when the process exits.
///
/// Two modes. `authenticated` runs with IAM authentication on
/// (`INITIAL_NO_AUTH_ACTION_COUNT=3`: the three requests that create a user, its access
/// key and its policy go unchecked), so every later request must carry a valid SigV4
/// signature by that key. moto 5.2 re-encodes the URL before it checks a signature, so it
/// refuses correctly signed requests whose key or query holds `/`, `+`, `=`, `%`, `~`, `,`,
/// `@`, `;`, `:` or `&` (boto3's too); the unauthenticated mode, which accepts any
/// signature, is for the conformance suite's keys. The bucket `mlv-test` is created in
/// both. Tests that need the server skip, naming what to install, when `moto_server` is
/// not found (`MLV_MOTO_SERVER`, then `PATH`, then `~/.pyenv/shims` and `~/.local/bin`).
public final class MotoServer: @unchecked Sendable {
    /// `http://127.0.0.1:PORT`.
    public let endpoint: String
    public let port: Int
    public let bucket = "mlv-test"
    /// An access key moto knows, allowed everything.
    public let credentials: AWSCredentials
    private let process: ChildProcess

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

    private static let plainServer = Mutex<Result<MotoServer, MotoError>?>(nil)
    private static let authenticatedServer = Mutex<Result<MotoServer, MotoError>?>(nil)

    /// The process's server of this mode, started on first use.
    /// - Throws: `MotoError` when it is not installed or does not come up.
    public static func shared(authenticated: Bool = false) throws -> MotoServer {
        if authenticated {
            return try authenticatedServer.withLock { try startOnce(&$0, authenticated: true) }
        }
        return try plainServer.withLock { try startOnce(&$0, authenticated: false) }
    }

    private static func startOnce(_ slot: inout Result<MotoServer, MotoError>?, authenticated: Bool) throws -> MotoServer {
        if let slot { return try slot.get() }
        let result = Result { () throws(MotoError) -> MotoServer in try MotoServer(authenticated: authenticated) }
        slot = result
        if case .success(let server) = result {
            let first = motoPids.withLock { pids in
                pids.append(server.process.pid)
                return pids.count == 1
            }
            if first { atexit { stopSharedAtExit() } }
        }
        return try result.get()
    }

    /// Why the server could not be used.
    public struct MotoError: Error, CustomStringConvertible {
        public var description: String
    }

    private init(authenticated: Bool) throws(MotoError) {
        guard let executable = Self.executable else { throw MotoError(description: Self.missingMessage) }
        let port = Self.freePort()
        self.port = port
        endpoint = "http://127.0.0.1:\(port)"
        let scratch: String
        do {
            scratch = try TemporaryDirectory.make(prefix: "mlv-moto")
            let pathEnv = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
            var environment = ["PATH": FS.parent(of: executable) + ":" + pathEnv]
            if authenticated { environment["INITIAL_NO_AUTH_ACTION_COUNT"] = "3" }
            process = try ChildProcess(
                executable: executable, arguments: ["-H", "127.0.0.1", "-p", "\(port)"], directory: scratch,
                environment: environment, timeout: 5)
        } catch {
            throw MotoError(description: "cannot start \(executable): \(error)")
        }
        let http = HTTPClient(timeouts: ConnectionTimeouts(connect: 500, io: 5000))
        let target = HTTPEndpoint(tls: false, host: "127.0.0.1", port: port)
        let deadline = monotonicMilliseconds() + 30_000
        while true {
            if let r = try? http.send(HTTPRequest(method: "GET", target: "/moto-api/", idempotent: true), to: target), r.status < 500 { break }
            if monotonicMilliseconds() > deadline {
                kill(process.pid, SIGKILL)
                let result = process.wait()
                throw MotoError(description: "moto_server did not answer on port \(port) within 30 s: \(result.stderr.suffix(2000))")
            }
            usleep(100_000)
        }
        do {
            credentials = try Self.makeUser(http, target)
            let remote = try S3Remote(bucket: bucket, endpoint: endpoint, credentials: credentials)
            try remote.createBucket()
        } catch {
            kill(process.pid, SIGKILL)
            _ = process.wait()
            throw MotoError(description: "setting up moto_server failed: \(error)")
        }
    }

    /// A fresh, empty S3 remote: the shared bucket under a prefix no other test uses
    /// (or under `prefix`).
    public func remote(prefix: String? = nil, timeouts: ConnectionTimeouts = ConnectionTimeouts(connect: 2000, io: 30_000),
                       multipartThreshold: Int64 = 64 << 20, partSize: Int64 = 16 << 20,
                       credentials: AWSCredentials? = nil, listPageSize: Int = 1000) throws -> S3Remote {
        var random = SystemRandomNumberGenerator()
        let prefix = prefix ?? "t" + String(random.next() as UInt64, radix: 36)
        return try S3Remote(bucket: bucket, prefix: prefix, endpoint: endpoint, credentials: credentials ?? self.credentials,
                            timeouts: timeouts, multipartThreshold: multipartThreshold, partSize: partSize,
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
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
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

private let motoPids = Mutex<[pid_t]>([])

/// Stops the shared servers when the test process exits (SIGTERM, then SIGKILL after 3 s).
private func stopSharedAtExit() {
    let pids = motoPids.withLock { $0 }
    for pid in pids { kill(pid, SIGTERM) }
    var status: Int32 = 0
    for pid in pids {
        var gone = false
        for _ in 0..<300 {
            if waitpid(pid, &status, WNOHANG) == pid { gone = true; break }
            usleep(10_000)
        }
        if !gone {
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
        }
    }
}
