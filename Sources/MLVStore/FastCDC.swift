import MLVBasics

/// The minimum, average and maximum chunk sizes for `FastCDC`, in bytes.
public struct ChunkerParameters: Sendable, Equatable {
    public var min: Int
    public var avg: Int
    public var max: Int

    public init(min: Int, avg: Int, max: Int) {
        self.min = min
        self.avg = avg
        self.max = max
    }

    /// 16 KiB / 64 KiB / 256 KiB: the sizes mlv cuts blobs with.
    public static let `default` = ChunkerParameters(min: 16384, avg: 65536, max: 262144)

    /// Checks that `FastCDC` can cut with these sizes.
    ///
    /// Throws `ChunkerParameterError` unless 64 <= min < avg < max <= 2^30 and avg is a
    /// power of two from 2^12 to 2^21 (the range the mask table covers).
    public func validate() throws {
        if min < 64 {
            throw ChunkerParameterError("chunker min \(min) is below 64")
        }
        if avg <= min {
            throw ChunkerParameterError("chunker avg \(avg) is not above min \(min)")
        }
        if max <= avg {
            throw ChunkerParameterError("chunker max \(max) is not above avg \(avg)")
        }
        if max > FastCDC.largestMax {
            throw ChunkerParameterError("chunker max \(max) is above \(FastCDC.largestMax)")
        }
        if avg.nonzeroBitCount != 1 {
            throw ChunkerParameterError("chunker avg \(avg) is not a power of two")
        }
        let bits = avg.trailingZeroBitCount
        if !FastCDC.averageBits.contains(bits) {
            throw ChunkerParameterError(
                "chunker avg \(avg) is outside \(1 << FastCDC.averageBits.lowerBound)...\(1 << FastCDC.averageBits.upperBound)")
        }
    }
}

/// Chunker parameters that `FastCDC` cannot cut with; the message names the bad value.
public struct ChunkerParameterError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// FastCDC content-defined chunking (Xia et al., IEEE TPDS 2020), normalized chunking
/// level 1, with the canonical gear table.
///
/// A chunk's first `min` bytes are skipped; after them a 64-bit gear hash
/// `h = (h << 1) + GEAR[byte]` runs from zero, tested against a strict mask until `avg`
/// and a loose one until `max`. Where `h & mask == 0` the matching byte starts the next
/// chunk. Cut points match the published FastCDC implementations byte for byte; the
/// known answers are checked in `Tests/MLVStoreTests/FastCDCTests.swift`.
public struct FastCDC: Sendable {
    public let parameters: ChunkerParameters

    // Copies of the parameters and masks as plain words so `cut` touches nothing else.
    private let minSize: Int
    private let avgSize: Int
    private let maxSize: Int
    private let maskS: UInt64
    private let maskL: UInt64
    private let maskSLS: UInt64
    private let maskLLS: UInt64

    /// Largest `max` accepted.
    public static let largestMax = 1 << 30

    /// log2(avg) values the mask table supports: `MASKS[bits - 1]` and `MASKS[bits + 1]`
    /// must both exist.
    static let averageBits = 12...21

    /// Builds a chunker.
    ///
    /// Throws `ChunkerParameterError` when `parameters.validate()` does.
    public init(_ parameters: ChunkerParameters) throws {
        try parameters.validate()
        self.parameters = parameters
        minSize = parameters.min
        avgSize = parameters.avg
        maxSize = parameters.max
        let bits = parameters.avg.trailingZeroBitCount
        maskS = Self.masks[bits + 1 - Self.maskBase]
        maskL = Self.masks[bits - 1 - Self.maskBase]
        maskSLS = maskS &<< 1
        maskLLS = maskL &<< 1
    }

    /// The length of the chunk that starts at `data`'s first byte, where `data` holds
    /// all the bytes not yet chunked; `data.count` when that is at most `min`.
    @inline(__always)
    public func cut(_ data: UnsafeRawBufferPointer) -> Int {
        var end = data.count
        if end <= minSize { return end }
        var center = avgSize
        if end > maxSize {
            end = maxSize
        } else if end < center {
            center = end
        }
        let base = data.baseAddress.unsafelyUnwrapped
        return Self.gearTable.withUnsafeBufferPointer { table in
            let gear = table.baseAddress.unsafelyUnwrapped
            let gearLS = gear + 256
            var hash: UInt64 = 0
            var i = minSize
            // Two bytes per step (the 2020 paper's "rolling two bytes"): the first byte is
            // folded in with the table shifted left once and tested against the mask shifted
            // left once, which is the same test as the one-byte loop's, so cut points agree.
            if let cutAt = Self.scan(base, gear, gearLS, &hash, &i, center, maskS, maskSLS) {
                return cutAt
            }
            if let cutAt = Self.scan(base, gear, gearLS, &hash, &i, end, maskL, maskLLS) {
                return cutAt
            }
            return end
        }
    }

    /// Hashes bytes `i..<end`, returning the offset of the first byte whose hash matches
    /// `mask`, or nil with `hash` and `i` advanced to `end`.
    @inline(__always)
    private static func scan(
        _ base: UnsafeRawPointer, _ gear: UnsafePointer<UInt64>, _ gearLS: UnsafePointer<UInt64>,
        _ hash: inout UInt64, _ i: inout Int, _ end: Int, _ mask: UInt64, _ maskLS: UInt64
    ) -> Int? {
        var h = hash
        var j = i
        while j + 1 < end {
            let a = Int(base.load(fromByteOffset: j, as: UInt8.self))
            let b = Int(base.load(fromByteOffset: j + 1, as: UInt8.self))
            h = (h &<< 2) &+ gearLS[a]
            if h & maskLS == 0 { return j }
            h = h &+ gear[b]
            if h & mask == 0 { return j + 1 }
            j &+= 2
        }
        if j < end {
            h = (h &<< 1) &+ gear[Int(base.load(fromByteOffset: j, as: UInt8.self))]
            if h & mask == 0 { return j }
            j &+= 1
        }
        hash = h
        i = j
        return nil
    }

    /// Calls `body` with the offset and length of each chunk of `data`, in order.
    ///
    /// Rethrows what `body` throws.
    public func forEachChunk(
        _ data: UnsafeRawBufferPointer, _ body: (_ offset: Int, _ length: Int) throws -> Void
    ) rethrows {
        guard let base = data.baseAddress else { return }
        var offset = 0
        while offset < data.count {
            let length = cut(UnsafeRawBufferPointer(start: base + offset, count: data.count - offset))
            try body(offset, length)
            offset += length
        }
    }

    /// The lengths of `data`'s chunks, in order; empty for empty data.
    public func chunkLengths(_ data: UnsafeRawBufferPointer) -> [Int] {
        var lengths: [Int] = []
        forEachChunk(data) { _, length in lengths.append(length) }
        return lengths
    }

    /// `GEAR[i]`: the first 8 bytes, big-endian, of MD5 over 64 bytes that all equal `i`.
    public static let gear: [UInt64] = (0..<256).map { i in
        let digest = MD5.hash([UInt8](repeating: UInt8(i), count: 64))
        return digest.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// `gear` followed by `gear` shifted left once, for the two-byte loop.
    private static let gearTable: [UInt64] = gear + gear.map { $0 &<< 1 }

    /// `MASKS[b]` for b in 11...22 (b bits set), from the FastCDC paper's implementation.
    static let maskBase = 11
    static let masks: [UInt64] = [
        0x0000_d900_0353_0000, // 11
        0x0000_d901_0353_0000, // 12
        0x0000_d903_0353_0000, // 13
        0x0000_d903_1353_0000, // 14
        0x0000_d90f_0353_0000, // 15
        0x0000_d903_0353_7000, // 16
        0x0000_d907_0353_7000, // 17
        0x0000_d907_0753_7000, // 18
        0x0000_d917_0753_7000, // 19
        0x0000_d917_4753_7000, // 20
        0x0000_d917_6753_7000, // 21
        0x0000_d937_6753_7000, // 22
    ]
}
