import MLVBasics
import MLVTestSupport
import Testing

@testable import MLVStore

// Known answers from shared/vectors/fastcdc.md. The published suites' 109,466-byte JPEG
// vector (SekienAkashita.jpg) is not checked: the file is not available here, and test
// data is generated in code, so the SplitMix64 vectors stand in for it.

/// The 4 MiB SplitMix64(42) stream every vector below is computed over.
private let stream = splitmix64Bytes(seed: 42, count: 4 << 20)

private let small = ChunkerParameters(min: 4096, avg: 16384, max: 65536)

private func lengths(_ parameters: ChunkerParameters, _ bytes: ArraySlice<UInt8>) throws -> [Int] {
    let chunker = try FastCDC(parameters)
    return bytes.withUnsafeBytes { chunker.chunkLengths($0) }
}

private func lengths(_ parameters: ChunkerParameters, _ bytes: [UInt8]) throws -> [Int] {
    try lengths(parameters, bytes[...])
}

@Suite("FastCDC")
struct FastCDCTests {
    @Test("gear table is MD5 of 64 equal bytes")
    func gearTable() {
        #expect(FastCDC.gear.count == 256)
        #expect(FastCDC.gear[0] == 0x3b5d_3c7d_207e_37dc)
        #expect(FastCDC.gear[1] == 0x784d_68ba_9112_3086)
        #expect(FastCDC.gear[255] == 0xaabd_2b2a_4515_04e1)
    }

    @Test("MASKS[b] has b bits set")
    func maskBitCounts() {
        for (i, mask) in FastCDC.masks.enumerated() {
            #expect(mask.nonzeroBitCount == FastCDC.maskBase + i)
        }
    }

    @Test("splitmix64(42) stream")
    func splitmix() {
        #expect(Hex.encode(stream.prefix(16)) == "956eeb2f2632d7bd03f166b233e3ef28")
        #expect(SHA256.hash(stream).hex == "32224c8dd342347121a61bb104f46f42f2097b5e4850f45e532609bd2fb78c66")
        // Cutting mid-output keeps the leading little-endian bytes.
        #expect(splitmix64Bytes(seed: 42, count: 11) == Array(stream.prefix(11)))
        #expect(splitmix64Bytes(seed: 42, count: 0).isEmpty)
    }

    @Test(
        "chunk lengths of splitmix64(42), 4 MiB",
        arguments: [
            (small, 208, [6146, 22708, 17021, 21285, 30548, 8886, 18530, 10976, 19529, 17571],
             "dd173a0280064cc01ab39201082efb4290bf88be2060d44aeb700f8162f3b043"),
            (ChunkerParameters.default, 46,
             [106594, 75208, 19070, 105223, 66060, 92895, 156030, 42707, 136630, 120388],
             "ed82c0f9cce23e2e51fed8f02254b02b79df92068c1ad3622fe73147fa024503"),
        ])
    func knownLengths(parameters: ChunkerParameters, count: Int, first: [Int], firstChunkSHA: String) throws {
        let got = try lengths(parameters, stream)
        #expect(got.count == count)
        #expect(Array(got.prefix(10)) == first)
        #expect(SHA256.hash(Array(stream.prefix(got[0]))).hex == firstChunkSHA)
        #expect(got.reduce(0, +) == stream.count)
        for length in got.dropLast() {
            #expect((parameters.min...parameters.max).contains(length))
        }
        #expect((1...parameters.max).contains(got.last!))
    }

    @Test(
        "two-byte loop cuts where the one-byte loop does",
        arguments: [
            small,
            ChunkerParameters(min: 64, avg: 4096, max: 65536),
            ChunkerParameters(min: 65, avg: 4096, max: 4099),
            ChunkerParameters(min: 77, avg: 4096, max: 4097),
            ChunkerParameters(min: 4097, avg: 8192, max: 12289),
        ])
    func matchesOneByteLoop(parameters: ChunkerParameters) throws {
        let data = Array(stream.prefix(1 << 20))
        #expect(try lengths(parameters, data) == oneByteLengths(parameters, data))
    }

    @Test("1 MiB prefix starts with the same chunks")
    func oneMiBPrefix() throws {
        let got = try lengths(small, stream.prefix(1 << 20))
        #expect(Array(got.prefix(10)) == [6146, 22708, 17021, 21285, 30548, 8886, 18530, 10976, 19529, 17571])
        #expect(got.reduce(0, +) == 1 << 20)
    }

    @Test("offsets passed to forEachChunk are contiguous")
    func offsets() throws {
        let chunker = try FastCDC(small)
        var expected = 0
        var seen = 0
        stream.prefix(300_000).withUnsafeBytes { data in
            chunker.forEachChunk(data) { offset, length in
                #expect(offset == expected)
                #expect(length > 0)
                expected += length
                seen += 1
            }
        }
        #expect(expected == 300_000)
        #expect(seen > 1)
    }

    @Test("forEachChunk rethrows and stops")
    func rethrowsBodyError() throws {
        struct Stop: Error {}
        let chunker = try FastCDC(small)
        var calls = 0
        #expect(throws: Stop.self) {
            try stream.withUnsafeBytes { data in
                try chunker.forEachChunk(data) { _, _ in
                    calls += 1
                    if calls == 3 { throw Stop() }
                }
            }
        }
        #expect(calls == 3)
    }

    @Test("empty input has no chunks")
    func empty() throws {
        #expect(try lengths(small, []) == [])
        #expect(try lengths(.default, [UInt8]()) == [])
        let chunker = try FastCDC(.default)
        #expect(chunker.cut(UnsafeRawBufferPointer(start: nil, count: 0)) == 0)
    }

    @Test("input no longer than min is one chunk", arguments: [1, 100, 4095, 4096])
    func shortInput(count: Int) throws {
        #expect(try lengths(small, stream.prefix(count)) == [count])
    }

    @Test("input of zeros is cut at max")
    func zeros() throws {
        // GEAR[0] shifted and summed never clears the mask bits here, so no byte matches.
        let zeros = [UInt8](repeating: 0, count: 3 * 65536 + 5000)
        #expect(try lengths(small, zeros) == [65536, 65536, 65536, 5000])
    }

    @Test("chunking is deterministic")
    func deterministic() throws {
        let first = try lengths(small, stream)
        let again = try lengths(small, splitmix64Bytes(seed: 42, count: 4 << 20))
        #expect(first == again)
        let other = try lengths(small, splitmix64Bytes(seed: 43, count: 4 << 20))
        #expect(first != other)
    }

    @Test(
        "chunks of a prefix match the whole until max before the prefix end",
        arguments: [100_000, 333_333, 1 << 20, 2_000_001])
    func prefixStable(prefixLength: Int) throws {
        let whole = try lengths(small, stream)
        let prefix = try lengths(small, stream.prefix(prefixLength))
        #expect(prefix.reduce(0, +) == prefixLength)
        // A chunk that starts at least `max` bytes before the prefix end sees the same bytes
        // in both, so it is cut the same.
        var start = 0
        var stable = 0
        for length in whole where start + small.max <= prefixLength {
            start += length
            stable += 1
        }
        #expect(stable > 0)
        #expect(Array(prefix.prefix(stable)) == Array(whole.prefix(stable)))
    }

    @Test("cut returns the next chunk's length from any start")
    func cutFromOffset() throws {
        let chunker = try FastCDC(small)
        let whole = try lengths(small, stream)
        stream.withUnsafeBytes { data in
            let rest = UnsafeRawBufferPointer(rebasing: data[whole[0]...])
            #expect(chunker.cut(rest) == whole[1])
        }
    }

    @Test(
        "invalid parameters are rejected",
        arguments: [
            (ChunkerParameters(min: 32, avg: 16384, max: 65536), "32"),
            (ChunkerParameters(min: 16384, avg: 16384, max: 65536), "16384"),
            (ChunkerParameters(min: 4096, avg: 16384, max: 16384), "16384"),
            (ChunkerParameters(min: 4096, avg: 20000, max: 65536), "20000"),
            (ChunkerParameters(min: 1024, avg: 2048, max: 65536), "2048"),
            (ChunkerParameters(min: 4096, avg: 1 << 22, max: 1 << 24), "4194304"),
            (ChunkerParameters(min: 4096, avg: 16384, max: (1 << 30) + 1), "1073741825"),
        ])
    func invalid(parameters: ChunkerParameters, named: String) {
        let error = #expect(throws: ChunkerParameterError.self) { try parameters.validate() }
        #expect(error?.description.contains(named) == true)
        #expect(throws: ChunkerParameterError.self) { try FastCDC(parameters) }
    }

    @Test(
        "valid parameter extremes are accepted",
        arguments: [
            ChunkerParameters.default,
            ChunkerParameters(min: 64, avg: 4096, max: 8192),
            ChunkerParameters(min: 4096, avg: 1 << 21, max: 1 << 30),
        ])
    func valid(parameters: ChunkerParameters) throws {
        try parameters.validate()
        _ = try FastCDC(parameters)
    }
}

/// The 2016 paper's one-byte loop, written plainly, as the reference the two-byte loop in
/// `FastCDC.cut` must agree with.
private func oneByteLengths(_ parameters: ChunkerParameters, _ data: [UInt8]) -> [Int] {
    let bits = parameters.avg.trailingZeroBitCount
    let strict = FastCDC.masks[bits + 1 - FastCDC.maskBase]
    let loose = FastCDC.masks[bits - 1 - FastCDC.maskBase]
    var lengths: [Int] = []
    var start = 0
    while start < data.count {
        let remaining = data.count - start
        var length = remaining
        if remaining > parameters.min {
            let end = Swift.min(remaining, parameters.max)
            let center = Swift.min(end, parameters.avg)
            length = end
            var hash: UInt64 = 0
            for i in parameters.min..<end {
                hash = (hash &<< 1) &+ FastCDC.gear[Int(data[start + i])]
                if hash & (i < center ? strict : loose) == 0 {
                    length = i
                    break
                }
            }
        }
        lengths.append(length)
        start += length
    }
    return lengths
}
