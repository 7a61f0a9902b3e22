import MLVBasics
import MLVStore

/// The payload of a chunk-list object: the ordered chunks of a multi-chunk blob.
///
///     "MLVCL" 0 0 1        8 bytes
///     count                8, little-endian
///     (chunk id 32, length 4 little-endian) * count
enum ChunkList {
    static let magic: [UInt8] = Array("MLVCL".utf8) + [0, 0, 1]

    static func encode(_ chunks: [(id: ObjectID, length: Int)]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 + chunks.count * 36)
        out.append(contentsOf: magic)
        out.appendLE(UInt64(chunks.count))
        for c in chunks {
            out.append(c.id)
            out.appendLE(UInt32(c.length))
        }
        return out
    }

    /// - Throws: `MLVError.damaged` when the payload is malformed.
    static func decode(_ bytes: [UInt8], blob: ObjectID) throws -> [(id: ObjectID, length: Int)] {
        try bytes.withUnsafeBytes { b in
            guard b.count >= 16, Array(b[0..<8]) == magic else {
                throw MLVError.damaged("chunk list of blob \(blob.short) is malformed")
            }
            let n = Int(b.readLE(UInt64.self, at: 8))
            guard n <= (b.count - 16) / 36, b.count == 16 + n * 36 else {
                throw MLVError.damaged("chunk list of blob \(blob.short) has a bad length")
            }
            return (0..<n).map { i in (b.readID(at: 16 + i * 36), Int(b.readLE(UInt32.self, at: 16 + i * 36 + 32))) }
        }
    }
}
