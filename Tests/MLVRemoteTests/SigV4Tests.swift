import MLVRemote
import Testing

/// Known answers from AWS's published Signature Version 4 test suite (credentials
/// AKIDEXAMPLE, region us-east-1, service `service`, 2015-08-30T12:36:00Z) and from the
/// S3 examples in the S3 API reference ("Signature Calculations for the Authorization
/// Header", credentials AKIAIOSFODNN7EXAMPLE, 2013-05-24).
@Suite("SigV4")
struct SigV4Tests {
    static let suite = SigV4(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                             region: "us-east-1", service: "service")
    static let s3 = SigV4(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                          region: "us-east-1", service: "s3")
    static let suiteHeaders = [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")]

    struct Vector: Sendable, CustomTestStringConvertible {
        var name: String
        var method: String
        var query: [(String, String)]
        var headers: [(String, String)]
        var payloadHash: String
        var signedHeaders: String
        var signature: String
        var testDescription: String { name }
    }

    static let vectors: [Vector] = [
        Vector(name: "get-vanilla", method: "GET", query: [], headers: suiteHeaders, payloadHash: SigV4.emptyPayloadHash,
               signedHeaders: "host;x-amz-date", signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        Vector(name: "get-vanilla-query", method: "GET", query: [("Param1", "value1")], headers: suiteHeaders,
               payloadHash: SigV4.emptyPayloadHash, signedHeaders: "host;x-amz-date",
               signature: "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
        Vector(name: "get-vanilla-query-order-key-case", method: "GET", query: [("Param2", "value2"), ("Param1", "value1")],
               headers: suiteHeaders, payloadHash: SigV4.emptyPayloadHash, signedHeaders: "host;x-amz-date",
               signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        Vector(name: "get-vanilla-query-order-value", method: "GET", query: [("Param1", "value2"), ("Param1", "Value1")],
               headers: suiteHeaders, payloadHash: SigV4.emptyPayloadHash, signedHeaders: "host;x-amz-date",
               signature: "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"),
        Vector(name: "get-vanilla-utf8-query", method: "GET", query: [("\u{1234}", "bar")], headers: suiteHeaders,
               payloadHash: SigV4.emptyPayloadHash, signedHeaders: "host;x-amz-date",
               signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
        Vector(name: "post-x-www-form-urlencoded", method: "POST", query: [],
               headers: [("Content-Type", "application/x-www-form-urlencoded")] + suiteHeaders,
               payloadHash: "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",  // SHA-256 of "Param1=value1"
               signedHeaders: "content-type;host;x-amz-date",
               signature: "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
    ]

    @Test("AWS test suite", arguments: vectors)
    func testSuite(_ v: Vector) {
        let auth = Self.suite.authorization(method: v.method, canonicalURI: "/", query: v.query, headers: v.headers,
                                            payloadHash: v.payloadHash, amzDate: "20150830T123600Z")
        #expect(auth == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                + "SignedHeaders=\(v.signedHeaders), Signature=\(v.signature)")
    }

    @Test("get-vanilla: canonical request and string to sign as published")
    func vanillaIntermediates() {
        let (canonical, signed) = SigV4.canonicalRequest(method: "GET", canonicalURI: "/", query: [], headers: Self.suiteHeaders,
                                                         payloadHash: SigV4.emptyPayloadHash)
        #expect(canonical == "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" + SigV4.emptyPayloadHash)
        #expect(signed == "host;x-amz-date")
        #expect(Self.suite.stringToSign(canonicalRequest: canonical, amzDate: "20150830T123600Z")
                == "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63")
    }

    @Test("S3 GET object example (Range header)")
    func s3GetObject() {
        let auth = Self.s3.authorization(
            method: "GET", canonicalURI: "/test.txt", query: [],
            headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
                      ("x-amz-content-sha256", SigV4.emptyPayloadHash), ("x-amz-date", "20130524T000000Z")],
            payloadHash: SigV4.emptyPayloadHash, amzDate: "20130524T000000Z")
        #expect(auth == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test("S3 GET bucket (list objects) example")
    func s3ListObjects() {
        let auth = Self.s3.authorization(
            method: "GET", canonicalURI: "/", query: [("max-keys", "2"), ("prefix", "J")],
            headers: [("Host", "examplebucket.s3.amazonaws.com"),
                      ("x-amz-content-sha256", SigV4.emptyPayloadHash), ("x-amz-date", "20130524T000000Z")],
            payloadHash: SigV4.emptyPayloadHash, amzDate: "20130524T000000Z")
        #expect(auth.hasSuffix("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"))
    }

    @Test("URI encoding keeps unreserved characters and encodes every other byte")
    func encoding() {
        #expect(SigV4.uriEncode("a b/c+d=e~f_g.h-i", encodeSlash: false) == "a%20b/c%2Bd%3De~f_g.h-i")
        #expect(SigV4.uriEncode("a/b", encodeSlash: true) == "a%2Fb")
        #expect(SigV4.uriEncode("\u{E9}%", encodeSlash: true) == "%C3%A9%25")
    }

    @Test("amz-date from epoch seconds")
    func amzDate() {
        #expect(SigV4.amzDate(seconds: 1_440_938_160) == "20150830T123600Z")
    }
}
