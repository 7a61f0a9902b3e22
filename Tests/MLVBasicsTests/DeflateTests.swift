import MLVBasics
import MLVTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// CSV-like rows: what deflate is for.
private func csv(rows: Int) -> [UInt8] {
    var out: [UInt8] = Array("id,label,score,split\n".utf8)
    var x: UInt64 = 12345
    for i in 0..<rows {
        x = x &* 6364136223846793005 &+ 1442695040888963407
        out.append(contentsOf: "\(i),class-\(x >> 61),0.\(x >> 50 & 0x3FF),\(i % 10 == 0 ? "test" : "train")\n".utf8)
    }
    return out
}

private func compress(_ bytes: [UInt8], level: Int32 = 1, limit: Int? = nil) -> [UInt8]? {
    bytes.withUnsafeBytes { Deflate.compress($0, level: level, limit: limit) }
}

private func decompress(_ bytes: [UInt8], expectedSize: Int) throws -> [UInt8] {
    try bytes.withUnsafeBytes { try Deflate.decompress($0, expectedSize: expectedSize) }
}

@Suite("Deflate")
struct DeflateTests {
    static let inputs: [(name: String, bytes: [UInt8])] = [
        ("empty", []),
        ("one byte", [42]),
        ("csv", csv(rows: 5000)),
        ("random", splitmix64Bytes(seed: 3, count: 100_000)),
        ("zeros", [UInt8](repeating: 0, count: 1 << 20)),
    ]

    @Test("compress then decompress gives the input back", arguments: inputs.indices, [Int32(1), 6, 9])
    func roundTrip(_ i: Int, level: Int32) throws {
        let input = Self.inputs[i].bytes
        let compressed = try #require(compress(input, level: level))
        let same = try decompress(compressed, expectedSize: input.count) == input
        #expect(same, "\(Self.inputs[i].name) at level \(level)")
    }

    @Test("a limit the output cannot fit under gives nil")
    func limit() throws {
        let text = csv(rows: 2000)
        let full = try #require(compress(text))
        #expect(full.count < text.count / 2)
        #expect(compress(text, limit: full.count) == full, "an output of exactly the limit fits")
        #expect(compress(text, limit: full.count - 1) == nil)
        #expect(compress(text, limit: 0) == nil)
        let random = splitmix64Bytes(seed: 4, count: 50_000)
        #expect(compress(random, limit: random.count - random.count / 10) == nil, "random bytes do not shrink by 10%")
    }

    @Test("a negative limit gives nil")
    func negativeLimit() async {
        await #expect(processExitsWith: .success) {
            let empty: [UInt8] = []
            let out = empty.withUnsafeBytes { Deflate.compress($0, level: 6, limit: -1) }
            exit(out == nil ? 0 : 3)
        }
    }

    @Test("damaged streams throw corrupt")
    func corruptStreams() throws {
        let text = csv(rows: 1000)
        let good = try #require(compress(text))
        let damaged: [(String, [UInt8])] = [
            ("not zlib", Array("this is not a zlib stream at all".utf8)),
            ("empty", []),
            ("header only", Array(good.prefix(2))),
            ("cut in half", Array(good.prefix(good.count / 2))),
            ("bad header check", [good[0], good[1] ^ 0x01] + good.dropFirst(2)),
            ("bad adler-32", Array(good.dropLast()) + [good.last! ^ 0xFF]),
        ]
        for (name, bytes) in damaged {
            // Input too short to inflate to the declared size is refused before inflating.
            let expected = text.count > Deflate.maximumExpansion(of: bytes.count)
                ? Deflate.Failure.wrongSize(expected: text.count) : .corrupt
            #expect(throws: expected, "\(name)") { try decompress(bytes, expectedSize: text.count) }
        }
    }

    @Test("a stream of another size throws wrongSize", arguments: [-1, 1])
    func wrongSize(delta: Int) throws {
        let text = csv(rows: 1000)
        let good = try #require(compress(text))
        #expect(throws: Deflate.Failure.wrongSize(expected: text.count + delta)) {
            try decompress(good, expectedSize: text.count + delta)
        }
        #expect(throws: Deflate.Failure.wrongSize(expected: 0)) { try decompress(good, expectedSize: 0) }
    }

    @Test("a declared size beyond deflate's 1032:1 limit is refused before anything is allocated")
    func impossibleDeclaredSize() throws {
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        let packed = try #require(compress(zeros, level: 9))
        // The real size is within the limit and decodes.
        #expect(try decompress(packed, expectedSize: zeros.count) == zeros)
        let impossible = Deflate.maximumExpansion(of: packed.count) + 1
        #expect(throws: Deflate.Failure.wrongSize(expected: impossible)) { try decompress(packed, expectedSize: impossible) }
        #expect(throws: Deflate.Failure.wrongSize(expected: 4 << 30)) { try decompress(Array(packed.prefix(40)), expectedSize: 4 << 30) }
    }

    @Test("a decompression bomb stops at the expected size")
    func bomb() throws {
        let zeros = [UInt8](repeating: 0, count: 10 << 20)
        let bomb = try #require(compress(zeros, level: 9))
        #expect(bomb.count < 20_000)
        #expect(throws: Deflate.Failure.wrongSize(expected: 1024)) { try decompress(bomb, expectedSize: 1024) }
        // Into a caller's buffer: only its 1 KiB is written, the guard bytes after it are not.
        var buffer = [UInt8](repeating: 0xAA, count: 1024 + 64)
        let error = buffer.withUnsafeMutableBytes { raw in
            #expect(throws: Deflate.Failure.wrongSize(expected: 1024)) {
                try bomb.withUnsafeBytes { try Deflate.decompress($0, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<1024])) }
            }
        }
        #expect(error != nil)
        #expect(buffer[1024...].allSatisfy { $0 == 0xAA })
        #expect(buffer[..<1024].allSatisfy { $0 == 0 })
    }

    @Test("looksCompressible: text yes, random no, tiny no")
    func looksCompressible() {
        func looks(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { Deflate.looksCompressible($0) } }
        #expect(looks(csv(rows: 5000)))
        #expect(looks(Array(csv(rows: 5000).prefix(100))))
        #expect(looks([UInt8](repeating: 0, count: 1 << 16)))
        #expect(!looks(splitmix64Bytes(seed: 5, count: 1 << 20)))
        #expect(!looks(Array(csv(rows: 10).prefix(63))), "below 64 bytes is never worth it")
        // Mostly random with a little text is still random.
        var mixed = splitmix64Bytes(seed: 7, count: 1 << 20)
        mixed.replaceSubrange(0..<1000, with: csv(rows: 100).prefix(1000))
        #expect(!looks(mixed))
    }
}
