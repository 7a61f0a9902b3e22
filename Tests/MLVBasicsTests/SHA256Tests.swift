import MLVBasics
import MLVTestSupport
import Testing

@Suite("SHA-256")
struct SHA256Tests {
    // Expectations from FIPS 180-2 and, for the SplitMix64 stream, from `sha256sum` over
    // the same bytes written by an independent Python implementation of SplitMix64.
    static let knownAnswers: [(name: String, bytes: [UInt8], hex: String)] = [
        ("empty", [], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("448 bits", Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ("a million a", [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000),
         "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
        ("1 MiB of splitmix64(1)", splitmix64Bytes(seed: 1, count: 1 << 20),
         "85b66b3a5816d686deb42f2d2473d9a7121ceb75c822b838f958c76ca86ed8ea"),
    ]

    @Test("known answers", arguments: knownAnswers.indices)
    func knownAnswer(_ i: Int) {
        let (name, bytes, hex) = Self.knownAnswers[i]
        #expect(SHA256.hash(bytes).hex == hex, "\(name)")
        var incremental = SHA256()
        incremental.update(bytes)
        #expect(incremental.finalize().hex == hex, "\(name), incremental")
    }

    @Test("the SplitMix64 stream starts as the Python generator's does")
    func splitmixPrefix() {
        #expect(Hex.encode(splitmix64Bytes(seed: 1, count: 16)) == "c15c0289ec2d0a9167ec8e65a18debbe")
    }

    @Test("incremental hashing over any split equals one shot")
    func incrementalEqualsOneShot() {
        let bytes = splitmix64Bytes(seed: 9, count: 10_000)
        let expected = SHA256.hash(bytes)
        let cuts: [[Int]] = [[0], [1], [63], [64], [65], [5000], [9999], [10_000], [1, 2, 3, 64, 128, 1000, 4096]]
        for points in cuts {
            var hasher = SHA256()
            var start = 0
            for cut in points + [bytes.count] {
                bytes[start..<cut].withUnsafeBytes { hasher.update($0) }
                start = cut
            }
            #expect(hasher.finalize() == expected, "cut at \(points)")
        }
        var empty = SHA256()
        empty.update([])
        empty.update(UnsafeRawBufferPointer(start: nil, count: 0))
        #expect(empty.finalize() == SHA256.hash([]))
    }
}

@Suite("ObjectID")
struct ObjectIDTests {
    @Test("hex round trips, upper case parses, bytes and words agree")
    func hexRoundTrip() {
        for seed in 0..<50 as Range<UInt64> {
            let id = SHA256.hash(splitmix64Bytes(seed: seed, count: 40))
            #expect(ObjectID(hex: id.hex) == id)
            #expect(ObjectID(hex: id.hex.uppercased()) == id)
            #expect(ObjectID(digest: id.bytes) == id)
            #expect(Hex.encode(id.bytes) == id.hex)
            #expect(id.short == String(id.hex.prefix(12)))
            #expect(id.hasHexPrefix(String(id.hex.prefix(5))))
            #expect("\(id)" == id.hex)
        }
        let low = ObjectID(hex: String(repeating: "0", count: 63) + "1")!
        let high = ObjectID(hex: "1" + String(repeating: "0", count: 63))!
        #expect(low < high, "ids order as their big-endian bytes")
        #expect(low.bytes.last == 1 && high.bytes.first == 0x10)
    }

    static let invalid: [String] = [
        "",
        String(repeating: "0", count: 63),
        String(repeating: "0", count: 65),
        String(repeating: "0", count: 63) + "g",
        String(repeating: "0", count: 63) + " ",
        " " + String(repeating: "0", count: 63),
        String(repeating: "0", count: 62) + "é",
        "0x" + String(repeating: "0", count: 62),
    ]

    @Test("anything but 64 hex digits is rejected", arguments: invalid)
    func invalidHex(_ text: String) {
        #expect(ObjectID(hex: text) == nil)
    }

    @Test("isLowerHex accepts only lower-case hex digits")
    func lowerHex() {
        #expect(Hex.isLowerHex("0123456789abcdef"))
        #expect(!Hex.isLowerHex(""))
        #expect(!Hex.isLowerHex("ABC"))
        #expect(!Hex.isLowerHex("abg"))
    }
}
