import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// zlib compression (`deflate`/`inflate`), bounded on the way out.
public enum Deflate {
    /// Compresses `input` at `level`; nil when the output would not be smaller than
    /// `limit` bytes (so callers can store raw without paying for a full compression).
    public static func compress(_ input: UnsafeRawBufferPointer, level: Int32 = 1, limit: Int? = nil) -> [UInt8]? {
        if let limit, limit <= 0 { return nil }
        var stream = z_stream()
        guard mlv_deflateInit(&stream, level) == Z_OK else { return nil }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        let capacity = min(bound, limit ?? bound)
        var output = [UInt8](repeating: 0, count: max(capacity, 1))
        let produced: Int? = output.withUnsafeMutableBytes { out in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
            stream.avail_in = uInt(input.count)
            stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(capacity)
            let rc = deflate(&stream, Z_FINISH)
            // Z_OK or Z_BUF_ERROR here means the output did not fit under the limit.
            return rc == Z_STREAM_END ? Int(stream.total_out) : nil
        }
        guard let n = produced else { return nil }
        output.removeSubrange(n...)
        return output
    }

    public enum Failure: Error, Equatable {
        /// The stream is not valid zlib data.
        case corrupt
        /// The stream decodes to a size other than the one declared.
        case wrongSize(expected: Int)
    }

    /// Decompresses `input`, which must decode to exactly `expectedSize` bytes. Never
    /// allocates more than `expectedSize`, so a decompression bomb cannot exhaust memory.
    /// - Throws: `Deflate.Failure` when the data is corrupt or its size is not the declared one.
    public static func decompress(_ input: UnsafeRawBufferPointer, expectedSize: Int) throws -> [UInt8] {
        // Deflate expands at most 1032:1, so a declared size beyond that cannot be met:
        // refuse it before allocating, or a forged size alone could claim gigabytes.
        guard expectedSize >= 0, expectedSize <= maximumExpansion(of: input.count) else {
            throw Failure.wrongSize(expected: expectedSize)
        }
        var output = [UInt8](repeating: 0, count: expectedSize)
        try output.withUnsafeMutableBytes { out in
            try decompress(input, into: out)
        }
        return output
    }

    /// The most bytes `count` bytes of a zlib stream can inflate to (deflate's 1032:1 limit,
    /// with room for the stream's header and trailer).
    public static func maximumExpansion(of count: Int) -> Int {
        count > Int.max / 1040 ? Int.max : count * 1032 + 1024
    }

    /// Decompresses `input` into `output`, which must be filled exactly.
    /// - Throws: `Deflate.Failure` when the data is corrupt or decodes to another size.
    public static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        var stream = z_stream()
        guard mlv_inflateInit(&stream) == Z_OK else { throw Failure.corrupt }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        var spare: UInt8 = 0
        let rc: Int32
        if output.count > 0 {
            stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(output.count)
            rc = inflate(&stream, Z_FINISH)
        } else {
            rc = withUnsafeMutablePointer(to: &spare) { p in
                stream.next_out = p
                stream.avail_out = 1
                return inflate(&stream, Z_FINISH)
            }
        }
        switch rc {
        case Z_STREAM_END:
            guard Int(stream.total_out) == output.count else { throw Failure.wrongSize(expected: output.count) }
        case Z_BUF_ERROR where stream.avail_out == 0:
            throw Failure.wrongSize(expected: output.count)
        default:
            throw Failure.corrupt
        }
    }

    /// A cheap guess whether deflate can save at least ~10% on this data: the order-0
    /// entropy of a sample of up to 4 KiB spread over the buffer. Text, CSV and sparse
    /// tensors pass; random bytes, JPEGs, packed weights fail and are stored raw without
    /// running deflate on them at all.
    public static func looksCompressible(_ data: UnsafeRawBufferPointer) -> Bool {
        let n = data.count
        if n < 64 { return false }
        let pieces = 8, pieceLength = min(512, n / pieces)
        let total = pieces * pieceLength
        // Four count tables, so consecutive equal bytes do not serialise on one counter.
        var counts = [UInt16](repeating: 0, count: 256 * 4)
        counts.withUnsafeMutableBufferPointer { c in
            let base = data.baseAddress!.assumingMemoryBound(to: UInt8.self)
            for p in 0..<pieces {
                let start = base + (n - pieceLength) * p / (pieces - 1)
                var i = 0
                while i + 4 <= pieceLength {
                    c[Int(start[i])] &+= 1
                    c[256 + Int(start[i + 1])] &+= 1
                    c[512 + Int(start[i + 2])] &+= 1
                    c[768 + Int(start[i + 3])] &+= 1
                    i += 4
                }
                while i < pieceLength { c[Int(start[i])] &+= 1; i += 1 }
            }
        }
        // H = log2(N) - sum(c log2 c) / N, with c log2 c from a table.
        var sum = 0.0
        for v in 0..<256 {
            let c = Int(counts[v]) + Int(counts[256 + v]) + Int(counts[512 + v]) + Int(counts[768 + v])
            if c > 1 { sum += cLog2c[c] }
        }
        let entropy = log2(Double(total)) - sum / Double(total)
        // A 4 KiB sample of uniform random bytes shows ~7.95 bits; 7.2 bits is a 10% saving
        // for an order-0 coder, and LZ matching only adds to that.
        return entropy < 7.2
    }

    /// `c * log2(c)` for every count a 4 KiB sample can reach.
    private static let cLog2c: [Double] = (0...4096).map { $0 < 2 ? 0 : Double($0) * log2(Double($0)) }
}

