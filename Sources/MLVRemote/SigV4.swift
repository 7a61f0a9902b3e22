import MLVBasics

/// AWS Signature Version 4 for requests signed in headers
/// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html).
///
/// The caller builds every header it will send (`host`, `x-amz-date`, and for S3
/// `x-amz-content-sha256`, plus `x-amz-security-token` with temporary credentials); all of
/// them are signed. The canonical URI is taken as given: S3 wants each path segment
/// URI-encoded once (`uriEncode(_:encodeSlash: false)`), which is also what the request
/// line must carry.
public struct SigV4: Sendable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var region: String
    public var service: String

    public init(accessKeyID: String, secretAccessKey: String, region: String, service: String = "s3") {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.region = region
        self.service = service
    }

    /// The payload hash S3 accepts for a body that is not hashed (safe only under TLS,
    /// which protects the body's integrity in transit).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// SHA-256 of the empty body.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// The `Authorization` header value for a request.
    /// - Parameters:
    ///   - canonicalURI: the encoded path, as sent (`/bucket/key%20name`).
    ///   - query: decoded query parameters; they are encoded and sorted here.
    ///   - headers: every header to sign, names in any case.
    ///   - payloadHash: hex SHA-256 of the body, or `unsignedPayload`.
    ///   - amzDate: `YYYYMMDDTHHMMSSZ`, the same value as the `x-amz-date` header.
    public func authorization(method: String, canonicalURI: String, query: [(String, String)],
                              headers: [(String, String)], payloadHash: String, amzDate: String) -> String {
        let (canonical, signed) = Self.canonicalRequest(method: method, canonicalURI: canonicalURI, query: query,
                                                        headers: headers, payloadHash: payloadHash)
        let signature = Hex.encode(HMAC.sha256(key: signingKey(date: String(amzDate.prefix(8))),
                                               stringToSign(canonicalRequest: canonical, amzDate: amzDate)))
        return "AWS4-HMAC-SHA256 Credential=\(accessKeyID)/\(scope(amzDate)), SignedHeaders=\(signed), Signature=\(signature)"
    }

    /// `date/region/service/aws4_request`.
    public func scope(_ amzDate: String) -> String {
        "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
    }

    /// The string to sign: algorithm, date, scope and the hash of the canonical request.
    public func stringToSign(canonicalRequest: String, amzDate: String) -> String {
        "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope(amzDate))\n" + SHA256.hash(Array(canonicalRequest.utf8)).hex
    }

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
    public func signingKey(date: String) -> [UInt8] {
        let kDate = HMAC.sha256(key: Array(("AWS4" + secretAccessKey).utf8), date)
        let kRegion = HMAC.sha256(key: kDate, region)
        let kService = HMAC.sha256(key: kRegion, service)
        return HMAC.sha256(key: kService, "aws4_request")
    }

    /// The canonical request and the signed-headers list.
    public static func canonicalRequest(method: String, canonicalURI: String, query: [(String, String)],
                                        headers: [(String, String)], payloadHash: String) -> (String, String) {
        let canonicalQuery = canonicalQuery(query)
        var merged: [String: [String]] = [:]
        for (name, value) in headers {
            merged[name.lowercased(), default: []].append(collapseSpaces(value))
        }
        let names = merged.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let canonicalHeaders = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        let signed = names.joined(separator: ";")
        let request = [method, canonicalURI.isEmpty ? "/" : canonicalURI, canonicalQuery, canonicalHeaders, signed, payloadHash]
            .joined(separator: "\n")
        return (request, signed)
    }

    /// Query parameters encoded with `uriEncode`, sorted by name then value (bytes), joined
    /// with `&`; a parameter without a value is `name=`.
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(String, String)] = query.map { (uriEncode($0.0, encodeSlash: true), uriEncode($0.1, encodeSlash: true)) }
        let sorted = encoded.sorted { a, b in
            a.0 == b.0 ? a.1.utf8.lexicographicallyPrecedes(b.1.utf8) : a.0.utf8.lexicographicallyPrecedes(b.0.utf8)
        }
        return sorted.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// RFC 3986 encoding as SigV4 wants it: unreserved characters (`A-Z a-z 0-9 - . _ ~`)
    /// stay, every other byte of the UTF-8 becomes `%XX` (upper case); `/` stays unless
    /// `encodeSlash`.
    public static func uriEncode(_ text: String, encodeSlash: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        let upper: [UInt8] = Array("0123456789ABCDEF".utf8)
        for b in text.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.append(b)
            case UInt8(ascii: "/") where !encodeSlash:
                out.append(b)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(upper[Int(b >> 4)])
                out.append(upper[Int(b & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `YYYYMMDDTHHMMSSZ` for seconds since the epoch.
    public static func amzDate(seconds: Int64) -> String {
        String(Timestamp.format(seconds: seconds).filter { $0 != "-" && $0 != ":" })
    }

    /// Trims a header value and collapses runs of spaces to one.
    private static func collapseSpaces(_ value: String) -> String {
        var out = ""
        var pendingSpace = false
        for c in value {
            if c == " " || c == "\t" {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(" "); pendingSpace = false }
                out.append(c)
            }
        }
        return out
    }
}
