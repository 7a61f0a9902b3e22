import MLVBasics
import MLVRemote
import MLVTestSupport
import Testing

/// The conformance suite and S3-specific cases against moto_server (see `MotoServer`).
@Suite("S3Remote on moto", .enabled(if: MotoServer.isInstalled, Comment(rawValue: MotoServer.missingMessage)))
struct S3RemoteTests {
    @Test("conformance", arguments: RemoteConformance.checks)
    func conformance(_ check: RemoteConformance.Check) throws {
        let moto = try MotoServer.shared()
        try check.run { try moto.remote() }
    }

    @Test("a file over the multipart threshold goes up in parts and appears only complete")
    func multipart() throws {
        let moto = try MotoServer.shared()
        let remote = try moto.remote(multipartThreshold: 5 << 20, partSize: 5 << 20)
        let dir = try TemporaryDirectory(prefix: "mlv-s3")
        let bytes = splitmix64Bytes(seed: 5, count: 12 << 20 | 321)
        try FS.atomicWrite(dir.appending("big"), bytes, durable: false)
        let etag = try remote.upload("packs/big.pack", from: dir.appending("big"))
        #expect(etag.hasSuffix("-3\""), "a multipart ETag names its part count: \(etag)")
        #expect(try remote.head("packs/big.pack") == RemoteEntry(key: "packs/big.pack", size: Int64(bytes.count), etag: etag))
        #expect(try remote.download("packs/big.pack", to: dir.appending("back")) == Int64(bytes.count))
        #expect(try FS.readFile(dir.appending("back")) == bytes)
        #expect(try remote.getRange("packs/big.pack", offset: (10 << 20) - 5, length: 10) == Array(bytes[((10 << 20) - 5)..<((10 << 20) + 5)]))
    }

    @Test("a listing longer than one page follows continuation tokens")
    func pagedListing() throws {
        let moto = try MotoServer.shared()
        let remote = try moto.remote(listPageSize: 7)
        let keys = (0..<40).map { "refs/k\($0)" }
        try Parallel.forEach(keys.count, workers: 4) { i in _ = try remote.put(keys[i], [UInt8(i & 0xFF)]) }
        let listed = try remote.list(prefix: "refs/")
        #expect(listed.count == 40)
        #expect(listed.map(\.key) == keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    }

    @Test("with signatures checked: a right key works, a wrong secret is unauthorized with S3's code and no secret shown")
    func wrongSecret() throws {
        let moto = try MotoServer.shared(authenticated: true)
        // No prefix: moto's check refuses a '/' in the listing's prefix parameter (see MotoServer).
        let right = try moto.remote(prefix: "")
        let etag = try right.create("refs-x", [1])
        _ = try right.replace("refs-x", [2], expected: etag)
        #expect(try right.get("refs-x")?.bytes == [2])
        #expect(try right.list(prefix: "refs").map(\.key) == ["refs-x"])
        try right.delete("refs-x")
        let wrong = AWSCredentials(accessKeyID: moto.credentials.accessKeyID, secretAccessKey: "not-the-secret-at-all")
        let remote = try moto.remote(prefix: "", credentials: wrong)
        do {
            _ = try remote.put("refs-x", [1])
            Issue.record("a request signed with the wrong secret was accepted")
        } catch let e as RemoteError {
            #expect(e.kind == .unauthorized)
            #expect("\(e)".contains("SignatureDoesNotMatch"))
            #expect(!"\(e)".contains("not-the-secret-at-all"))
        }
        let unknown = try moto.remote(prefix: "", credentials: AWSCredentials(accessKeyID: "AKIANOBODY", secretAccessKey: "x"))
        do {
            _ = try unknown.get("refs-x")
            Issue.record("an unknown access key was accepted")
        } catch let e as RemoteError {
            #expect(e.kind == .unauthorized)
            #expect("\(e)".contains("InvalidAccessKeyId"))
        }
    }

    @Test("missing credentials are an unauthorized error before any request")
    func missingCredentials() throws {
        let dir = try TemporaryDirectory(prefix: "mlv-s3")
        do {
            _ = try S3Remote.fromEnvironment(url: "s3://mlv-test/x", endpoint: "http://127.0.0.1:9", environment: ["HOME": dir.path])
            Issue.record("an S3 remote was made without credentials")
        } catch let e as RemoteError {
            #expect(e.kind == .unauthorized)
            #expect("\(e)".contains("s3://mlv-test/x"))
            #expect("\(e)".contains("AWS_ACCESS_KEY_ID"))
        }
    }

    @Test("a missing bucket is notFound, naming it")
    func missingBucket() throws {
        let moto = try MotoServer.shared()
        let remote = try S3Remote(bucket: "no-such-bucket", endpoint: moto.endpoint, credentials: moto.credentials)
        do {
            _ = try remote.get("refs/x")
            Issue.record("a get from a missing bucket returned")
        } catch let e as RemoteError {
            #expect(e.kind == .notFound)
            #expect("\(e)".contains("no-such-bucket"))
        }
    }
}

/// Failures that need no server: they must come back fast and say what happened.
@Suite("S3Remote failures")
struct S3RemoteFailureTests {
    let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret")

    @Test("nobody listening on the port: unreachable at once")
    func refused() throws {
        let port = MotoServer.freePort()
        let remote = try S3Remote(bucket: "mlv-test", endpoint: "http://127.0.0.1:\(port)", credentials: credentials,
                                  timeouts: ConnectionTimeouts(connect: 1000, io: 1000))
        let start = monotonicMilliseconds()
        try RemoteConformance.expectKind(.unreachable, "get from a closed port") { _ = try remote.get("refs/x") }
        try RemoteConformance.expectKind(.unreachable, "create on a closed port") { _ = try remote.create("refs/x", [1]) }
        #expect(monotonicMilliseconds() - start < 3000)
    }

    @Test("a connect that is never answered times out within the connect timeout")
    func blackholed() throws {
        let server = try LoopbackServer(acceptConnections: false) { _ in .hang }
        var fillers: [TCPConnection] = []
        for _ in 0..<4 {
            if let c = try? TCPConnection.connect(host: "127.0.0.1", port: server.port, timeouts: ConnectionTimeouts(connect: 200, io: 200)) {
                fillers.append(c)
            }
        }
        let remote = try S3Remote(bucket: "mlv-test", endpoint: "http://127.0.0.1:\(server.port)", credentials: credentials,
                                  timeouts: ConnectionTimeouts(connect: 500, io: 500))
        let start = monotonicMilliseconds()
        do {
            _ = try remote.head("refs/x")
            Issue.record("a head through a blackholed connect returned")
        } catch let e as RemoteError {
            #expect(e.kind == .unreachable)
            #expect("\(e)".contains("127.0.0.1:\(server.port)"))
        }
        #expect(monotonicMilliseconds() - start < 3000)
        withExtendedLifetime(fillers) {}
    }

    @Test("a server that never answers times out on read")
    func silentServer() throws {
        let server = try LoopbackServer { _ in .hang }
        let remote = try S3Remote(bucket: "mlv-test", endpoint: "http://127.0.0.1:\(server.port)", credentials: credentials,
                                  timeouts: ConnectionTimeouts(connect: 500, io: 400))
        let start = monotonicMilliseconds()
        try RemoteConformance.expectKind(.unreachable, "get from a silent server") { _ = try remote.get("refs/x") }
        #expect(monotonicMilliseconds() - start < 3000)
    }

    @Test("5xx answers to idempotent requests are retried; conditional writes are not")
    func retries() throws {
        let calls = AtomicCounter()
        let server = try LoopbackServer { request in
            let n = calls.add(1)
            if request.method == "GET" && n < 3 { return .send(LoopbackServer.response(503, Array("<Error><Code>SlowDown</Code></Error>".utf8))) }
            if request.method == "PUT" { return .send(LoopbackServer.response(500, Array("<Error><Code>InternalError</Code><Message>boom</Message></Error>".utf8))) }
            return .send(LoopbackServer.response(200, [7], headers: [("ETag", "\"e\"")]))
        }
        let remote = try S3Remote(bucket: "mlv-test", endpoint: "http://127.0.0.1:\(server.port)", credentials: credentials,
                                  timeouts: ConnectionTimeouts(connect: 500, io: 2000))
        #expect(try remote.get("refs/x") == RemoteObject(bytes: [7], etag: "\"e\""))
        #expect(calls.current == 3)
        do {
            _ = try remote.create("refs/y", [1])
            Issue.record("a 500 was taken for success")
        } catch let e as RemoteError {
            #expect(e.kind == .failed)
            #expect("\(e)".contains("InternalError: boom"))
        }
        #expect(calls.current == 4)
    }

    @Test("bucket names, endpoints and s3:// URLs are checked")
    func arguments() throws {
        try RemoteConformance.expectKind(.failed, "an upper-case bucket") { _ = try S3Remote(bucket: "Team", credentials: credentials) }
        try RemoteConformance.expectKind(.failed, "a bad endpoint") {
            _ = try S3Remote(bucket: "team", endpoint: "ftp://x", credentials: credentials)
        }
        #expect(S3Remote.parseURL("s3://team-ml/mlv/sub")! == ("team-ml", "mlv/sub"))
        #expect(S3Remote.parseURL("s3://team-ml")! == ("team-ml", ""))
        #expect(S3Remote.parseURL("http://x") == nil)
        let aws = try S3Remote(bucket: "team-ml", prefix: "/mlv/", region: "eu-west-1", credentials: credentials)
        #expect(aws.location == "s3://team-ml/mlv")
        #expect(aws.endpoint.description == "https://team-ml.s3.eu-west-1.amazonaws.com")
        #expect(!aws.pathStyle)
    }
}
