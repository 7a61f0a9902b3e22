import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// A `Remote` in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, moto), spoken to in
/// plain S3 over HTTP/1.1 with SigV4-signed requests.
///
/// - Key `k` is the object `<prefix>/k`. With an `endpoint` requests use path-style
///   addressing (`http://host:port/bucket/key`), which every S3-compatible store accepts;
///   without one they go to AWS (`https://bucket.s3.region.amazonaws.com/key`).
/// - `create` is `PUT` with `If-None-Match: *`, `replace` is `PUT` with `If-Match: <etag>`;
///   412, and 409 `ConditionalRequestConflict` (a concurrent conditional write), mean the
///   condition failed, as does 404 for `replace` (nothing to match).
/// - Files above `multipartThreshold` go up as a multipart upload, parts in parallel;
///   S3 shows the object only once the upload completes, and a failed upload is aborted.
/// - Bodies are hashed into the signature, except files streamed over HTTPS, which are
///   sent as `UNSIGNED-PAYLOAD` (TLS protects them in transit).
/// - Idempotent requests (everything but `create` and `replace`) are retried with
///   backoff after a 5xx answer or a reset connection.
public final class S3Remote: Remote {
    public let bucket: String
    /// The key prefix inside the bucket, without leading or trailing `/`; may be empty.
    public let prefix: String
    public let endpoint: HTTPEndpoint
    public let region: String
    public let location: String
    /// Whether the bucket is in the path (`/bucket/key`) rather than the host name.
    public let pathStyle: Bool
    public let multipartThreshold: Int64
    public let partSize: Int64
    /// Retries of an idempotent request after a 5xx or a reset connection.
    public let retries: Int
    /// Keys per listing page (`max-keys`; S3 caps it at 1000).
    public let listPageSize: Int
    private let signer: SigV4
    private let sessionToken: String?
    private let client: HTTPClient

    /// An S3 remote.
    /// - Parameters:
    ///   - endpoint: `http(s)://host[:port]` of an S3-compatible store; nil for AWS.
    ///   - caFile: a PEM bundle to trust instead of the system's certificates.
    ///   - partSize: multipart part size, at least 5 MiB (S3's minimum).
    /// - Throws: `RemoteError.failed` for an invalid bucket name, prefix or endpoint URL.
    public init(bucket: String, prefix: String = "", endpoint: String? = nil, region: String = "us-east-1",
                credentials: AWSCredentials, timeouts: ConnectionTimeouts = ConnectionTimeouts(), caFile: String? = nil,
                multipartThreshold: Int64 = 64 << 20, partSize: Int64 = 16 << 20, retries: Int = 3,
                listPageSize: Int = 1000) throws {
        var trimmed = Substring(prefix)
        while trimmed.hasPrefix("/") { trimmed = trimmed.dropFirst() }
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        self.bucket = bucket
        self.prefix = String(trimmed)
        self.region = region
        location = "s3://\(bucket)" + (trimmed.isEmpty ? "" : "/\(trimmed)")
        guard Self.isValidBucket(bucket) else {
            throw RemoteError(.failed, location: location,
                              "invalid bucket name '\(RemoteKey.printable(bucket))': 3 to 63 lowercase letters, digits, '.' and '-'")
        }
        if !trimmed.isEmpty { try RemoteKey.check(String(trimmed), location: location) }
        if let endpoint {
            guard let parsed = HTTPEndpoint(url: endpoint) else {
                throw RemoteError(.failed, location: location,
                                  "invalid endpoint '\(RemoteKey.printable(endpoint))': expected http://host[:port] or https://host[:port]")
            }
            self.endpoint = parsed
            pathStyle = true
        } else if bucket.contains(".") {
            // A dotted bucket name does not match the wildcard certificate of virtual hosts.
            self.endpoint = HTTPEndpoint(tls: true, host: "s3.\(region).amazonaws.com")
            pathStyle = true
        } else {
            self.endpoint = HTTPEndpoint(tls: true, host: "\(bucket).s3.\(region).amazonaws.com")
            pathStyle = false
        }
        signer = SigV4(accessKeyID: credentials.accessKeyID, secretAccessKey: credentials.secretAccessKey, region: region)
        sessionToken = credentials.sessionToken
        client = HTTPClient(timeouts: timeouts, caFile: caFile)
        self.multipartThreshold = multipartThreshold
        self.partSize = max(partSize, 5 << 20)
        self.retries = retries
        self.listPageSize = max(1, min(listPageSize, 1000))
    }

    /// An S3 remote for `s3://bucket[/prefix]`, with credentials, region and CA bundle
    /// found as the AWS CLI finds them (`environment` is usually the process's).
    /// The region is `region`, else the environment's or profile's, else `us-east-1`.
    /// - Throws: `RemoteError.unauthorized` when no credentials are found, `.failed` for a
    ///   URL that is not `s3://bucket[/prefix]`.
    public static func fromEnvironment(url: String, endpoint: String? = nil, region: String? = nil, profile: String? = nil,
                                       environment: [String: String] = AWSCredentials.processEnvironment(),
                                       timeouts: ConnectionTimeouts = ConnectionTimeouts()) throws -> S3Remote {
        guard let (bucket, prefix) = parseURL(url) else {
            throw RemoteError(.failed, location: RemoteKey.printable(url), "not an S3 URL: expected s3://bucket[/prefix]")
        }
        let credentials = try AWSCredentials.resolve(environment: environment, profile: profile, location: url)
        let resolvedRegion = try region ?? AWSCredentials.region(environment: environment, profile: profile, location: url) ?? "us-east-1"
        let resolvedEndpoint = endpoint ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"]
        return try S3Remote(bucket: bucket, prefix: prefix, endpoint: resolvedEndpoint, region: resolvedRegion,
                            credentials: credentials, timeouts: timeouts, caFile: environment["AWS_CA_BUNDLE"])
    }

    /// Splits `s3://bucket/prefix`; nil when `url` is not of that form.
    public static func parseURL(_ url: String) -> (bucket: String, prefix: String)? {
        guard url.hasPrefix("s3://") else { return nil }
        let rest = url.dropFirst(5)
        let bucket = rest.prefix { $0 != "/" }
        guard !bucket.isEmpty else { return nil }
        return (String(bucket), String(rest.dropFirst(bucket.count).drop { $0 == "/" }))
    }

    static func isValidBucket(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (3...63).contains(bytes.count) else { return false }
        return bytes.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2E || $0 == 0x2D }
            && bytes.first != 0x2E && bytes.first != 0x2D
    }

    // MARK: Remote

    public func get(_ key: String) throws -> RemoteObject? {
        let response = try send("GET", key: key, idempotent: true)
        if response.status == 404 { try throwIfNoBucket(response, key: key); return nil }
        try check(response, key: key)
        return RemoteObject(bytes: response.body, etag: response.header("etag") ?? "")
    }

    public func getRange(_ key: String, offset: Int64, length: Int) throws -> [UInt8] {
        try RemoteRange.check(offset: offset, length: length, key: key, location: location)
        if length == 0 {
            guard try head(key) != nil else { throw notFound(key) }
            return []
        }
        let range = "bytes=\(offset)-\(offset + Int64(length) - 1)"
        let response = try send("GET", key: key, headers: [("Range", range)], idempotent: true)
        switch response.status {
        case 206:
            return Array(response.body.prefix(length))
        case 200:  // a store that ignores Range sends everything
            let start = Int(min(offset, Int64(response.body.count)))
            return Array(response.body[start..<min(response.body.count, start + length)])
        case 416:  // the range starts at or after the end of an existing object
            return []
        case 404:
            throw notFound(key)
        default:
            try check(response, key: key)
            return response.body
        }
    }

    public func download(_ key: String, to path: String) throws -> Int64 {
        let response = try send("GET", key: key, idempotent: true, downloadTo: path)
        if response.status == 404 { throw notFound(key) }
        try check(response, key: key)
        return response.bytesToFile
    }

    public func head(_ key: String) throws -> RemoteEntry? {
        let response = try send("HEAD", key: key, idempotent: true)
        if response.status == 404 { return nil }
        try check(response, key: key)
        return RemoteEntry(key: key, size: Int64(response.header("content-length") ?? "") ?? 0, etag: response.header("etag") ?? "")
    }

    public func put(_ key: String, _ bytes: [UInt8]) throws -> String {
        try write(key, body: .bytes(bytes), conditions: [], idempotent: true)
    }

    public func upload(_ key: String, from path: String) throws -> String {
        try RemoteKey.check(key, location: location)
        let size: Int64
        do {
            guard let st = try FS.stat(path) else { throw FileSystemError(call: "stat", path: path, errno: ENOENT) }
            size = Int64(st.st_size)
        } catch {
            throw RemoteFile.wrap(error, key: key, location: location)
        }
        if size > multipartThreshold {
            return try multipartUpload(key, path: path, size: size)
        }
        return try write(key, body: .file(path: path, offset: 0, length: size), conditions: [], idempotent: true)
    }

    public func create(_ key: String, _ bytes: [UInt8]) throws -> String {
        try write(key, body: .bytes(bytes), conditions: [("If-None-Match", "*")], idempotent: false)
    }

    public func replace(_ key: String, _ bytes: [UInt8], expected: String) throws -> String {
        let tag = expected.hasPrefix("\"") || expected.hasPrefix("W/") ? expected : "\"\(expected)\""
        return try write(key, body: .bytes(bytes), conditions: [("If-Match", tag)], idempotent: false)
    }

    public func list(prefix listPrefix: String) throws -> [RemoteEntry] {
        try RemoteKey.checkPrefix(listPrefix, location: location)
        let base = prefix.isEmpty ? "" : prefix + "/"
        var entries: [RemoteEntry] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", base + listPrefix), ("max-keys", "\(listPageSize)")]
            if let token { query.append(("continuation-token", token)) }
            let response = try send("GET", key: nil, query: query, idempotent: true)
            try check(response, key: nil)
            let text = Substring(String(decoding: response.body, as: UTF8.self))
            for item in S3XML.elements("Contents", in: text) {
                guard let full = S3XML.value("Key", in: item), full.hasPrefix(base) else { continue }
                let key = String(full.dropFirst(base.count))
                // Keys mlv could not have written (a hostile or foreign writer) are not listed.
                guard RemoteKey.problem(key) == nil else { continue }
                entries.append(RemoteEntry(key: key, size: Int64(S3XML.value("Size", in: item) ?? "") ?? 0,
                                           etag: S3XML.value("ETag", in: item) ?? ""))
            }
            let truncated = S3XML.value("IsTruncated", in: text) == "true"
            token = truncated ? S3XML.value("NextContinuationToken", in: text) : nil
            if truncated && token == nil {
                throw RemoteError(.failed, location: location, "listing truncated without a continuation token")
            }
        } while token != nil
        return RemoteKey.sortedByBytes(entries)
    }

    public func delete(_ key: String) throws {
        let response = try send("DELETE", key: key, idempotent: true)
        if response.status == 404 { try throwIfNoBucket(response, key: key); return }
        try check(response, key: key)
    }

    /// Creates the bucket (`PUT /bucket`), in `region` unless that is us-east-1; an
    /// existing bucket owned by these credentials is fine. For setting up a new store and tests.
    /// - Throws: `RemoteError` as for any request.
    public func createBucket() throws {
        let body: HTTPBody = region == "us-east-1" ? .none : .bytes(Array(
            "<CreateBucketConfiguration><LocationConstraint>\(S3XML.escape(region))</LocationConstraint></CreateBucketConfiguration>".utf8))
        let response = try send("PUT", key: nil, body: body, idempotent: true)
        if response.status == 409 && Self.errorCode(response) == "BucketAlreadyOwnedByYou" { return }
        try check(response, key: nil)
    }

    // MARK: writes

    private func write(_ key: String, body: HTTPBody, conditions: [(String, String)], idempotent: Bool) throws -> String {
        let response = try send("PUT", key: key, headers: conditions, body: body, idempotent: idempotent)
        if !conditions.isEmpty {
            switch response.status {
            case 412:
                throw RemoteError(.preconditionFailed, location: location, key: key,
                                  conditions[0].0 == "If-None-Match" ? "already exists" : "changed since entity tag \(conditions[0].1)")
            case 409 where Self.errorCode(response) == "ConditionalRequestConflict":
                throw RemoteError(.preconditionFailed, location: location, key: key, "a concurrent conditional write won")
            case 404 where conditions[0].0 == "If-Match" && Self.errorCode(response) != "NoSuchBucket":
                throw RemoteError(.preconditionFailed, location: location, key: key, "does not exist")
            default:
                break
            }
        }
        try check(response, key: key)
        guard let etag = response.header("etag") else {
            throw RemoteError(.failed, location: location, key: key, "the store answered a PUT without an ETag")
        }
        return etag
    }

    private func multipartUpload(_ key: String, path: String, size: Int64) throws -> String {
        let start = try send("POST", key: key, query: [("uploads", "")], idempotent: false)
        try check(start, key: key)
        guard let uploadID = S3XML.value("UploadId", in: Substring(String(decoding: start.body, as: UTF8.self))) else {
            throw RemoteError(.failed, location: location, key: key, "the store started a multipart upload without an UploadId")
        }
        do {
            let count = Int((size + partSize - 1) / partSize)
            let etags = Locked([String](repeating: "", count: count))
            try Parallel.forEach(count, workers: min(4, count)) { i in
                let offset = Int64(i) * partSize
                let length = min(partSize, size - offset)
                let response = try send("PUT", key: key, query: [("partNumber", "\(i + 1)"), ("uploadId", uploadID)],
                                        body: .file(path: path, offset: offset, length: length), idempotent: true)
                try check(response, key: key)
                guard let etag = response.header("etag") else {
                    throw RemoteError(.failed, location: location, key: key, "part \(i + 1) stored without an ETag")
                }
                etags.withLock { $0[i] = etag }
            }
            var xml = "<CompleteMultipartUpload>"
            for (i, etag) in etags.withLock({ $0 }).enumerated() {
                xml += "<Part><PartNumber>\(i + 1)</PartNumber><ETag>\(S3XML.escape(etag))</ETag></Part>"
            }
            xml += "</CompleteMultipartUpload>"
            let done = try send("POST", key: key, query: [("uploadId", uploadID)], body: .bytes(Array(xml.utf8)), idempotent: true)
            try check(done, key: key)
            let text = Substring(String(decoding: done.body, as: UTF8.self))
            // S3 can answer 200 and still report an error in the body.
            if !S3XML.elements("Error", in: text).isEmpty {
                throw failure(status: done.status, code: S3XML.value("Code", in: text), message: S3XML.value("Message", in: text), key: key)
            }
            return S3XML.value("ETag", in: text) ?? done.header("etag") ?? ""
        } catch {
            _ = try? send("DELETE", key: key, query: [("uploadId", uploadID)], idempotent: true)
            throw error
        }
    }

    // MARK: requests

    /// Signs and sends one request, retrying idempotent ones after a 5xx or a reset.
    private func send(_ method: String, key: String?, query: [(String, String)] = [], headers extra: [(String, String)] = [],
                      body: HTTPBody = .none, idempotent: Bool, downloadTo: String? = nil) throws -> HTTPResponse {
        var path = pathStyle ? "/" + bucket : ""
        if let key {
            try RemoteKey.check(key, location: location)
            path += "/" + SigV4.uriEncode(prefix.isEmpty ? key : prefix + "/" + key, encodeSlash: false)
        } else if !pathStyle {
            path = "/"
        }
        let payloadHash = try payloadHash(body, key: key)
        // The query goes out exactly as it is signed: encoded and sorted.
        let encodedQuery = SigV4.canonicalQuery(query)
        let target = path + (encodedQuery.isEmpty ? "" : "?" + encodedQuery)
        var attempt = 0
        while true {
            let amzDate = SigV4.amzDate(seconds: Int64(time(nil)))
            var headers = [("Host", endpoint.hostHeader), ("x-amz-date", amzDate), ("x-amz-content-sha256", payloadHash)]
            if let sessionToken { headers.append(("x-amz-security-token", sessionToken)) }
            headers += extra
            let authorization = signer.authorization(method: method, canonicalURI: path, query: query, headers: headers,
                                                     payloadHash: payloadHash, amzDate: amzDate)
            let sent = headers.filter { $0.0 != "Host" } + [("Authorization", authorization)]
            let request = HTTPRequest(method: method, target: target, headers: sent, body: body, idempotent: idempotent)
            do {
                let response = try client.send(request, to: endpoint, downloadTo: downloadTo)
                if idempotent && response.status >= 500 && attempt < retries {
                    attempt += 1
                    backoff(attempt)
                    continue
                }
                return response
            } catch let e as NetworkError {
                if idempotent && e.kind == .closed && attempt < retries {
                    attempt += 1
                    backoff(attempt)
                    continue
                }
                let kind: RemoteError.Kind = (e.kind == .unreachable || e.kind == .timedOut) ? .unreachable : .failed
                throw RemoteError(kind, location: location, key: key, "\(endpoint): \(e.message)")
            } catch {
                throw RemoteFile.wrap(error, key: key, location: location)
            }
        }
    }

    /// Sleeps 100 ms, 200 ms, 400 ms ... with up to 50% jitter.
    private func backoff(_ attempt: Int) {
        let base: Int = 100_000 << min(attempt - 1, 6)
        let jitter: Int = Int.random(in: 0...(base / 2))
        usleep(UInt32(base + jitter))
    }

    private func payloadHash(_ body: HTTPBody, key: String?) throws -> String {
        switch body {
        case .none:
            return SigV4.emptyPayloadHash
        case .bytes(let bytes):
            return SHA256.hash(bytes).hex
        case .file(let path, let offset, let length):
            if endpoint.tls { return SigV4.unsignedPayload }
            // Plain HTTP: sign the real hash so the body cannot be altered in transit.
            do {
                let fd = try FS.open(path, O_RDONLY)
                defer { FS.close(fd) }
                var hasher = MLVBasics.SHA256()
                var buffer = [UInt8](repeating: 0, count: 1 << 20)
                var done: Int64 = 0
                while done < length {
                    let want = Int(min(Int64(buffer.count), length - done))
                    let n = try buffer.withUnsafeMutableBytes {
                        try FS.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want]), at: Int(offset + done), path: path)
                    }
                    if n == 0 { throw FileSystemError(call: "pread", path: path, errno: EIO) }
                    buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    done += Int64(n)
                }
                return hasher.finalize().hex
            } catch {
                throw RemoteFile.wrap(error, key: key, location: location)
            }
        }
    }

    // MARK: errors

    private func notFound(_ key: String) -> RemoteError {
        RemoteError(.notFound, location: location, key: key, "no such object")
    }

    private func throwIfNoBucket(_ response: HTTPResponse, key: String?) throws {
        if Self.errorCode(response) == "NoSuchBucket" {
            throw RemoteError(.notFound, location: location, key: key, "bucket '\(bucket)' does not exist (NoSuchBucket)")
        }
    }

    static func errorCode(_ response: HTTPResponse) -> String? {
        S3XML.value("Code", in: Substring(String(decoding: response.body.prefix(64 << 10), as: UTF8.self)))
    }

    /// Throws unless `response` is a 2xx.
    private func check(_ response: HTTPResponse, key: String?) throws {
        guard !(200..<300).contains(response.status) else { return }
        let text = Substring(String(decoding: response.body.prefix(64 << 10), as: UTF8.self))
        throw failure(status: response.status, code: S3XML.value("Code", in: text), message: S3XML.value("Message", in: text), key: key)
    }

    /// An error for an S3 answer: its status, code and message only (an S3 error body can
    /// echo the canonical request, which is not for people).
    private func failure(status: Int, code: String?, message: String?, key: String?) -> RemoteError {
        let kind: RemoteError.Kind
        switch status {
        case 401, 403: kind = .unauthorized
        case 404: kind = .notFound
        case 409 where code == "ConditionalRequestConflict", 412: kind = .preconditionFailed
        default: kind = .failed
        }
        var text = "HTTP \(status)"
        if let code { text += " \(RemoteKey.printable(code))" }
        if let message { text += ": \(RemoteKey.printable(String(message.prefix(300))))" }
        if kind == .unauthorized && code == nil { text += " (access denied; check the credentials and the bucket policy)" }
        return RemoteError(kind, location: location, key: key, text)
    }
}
