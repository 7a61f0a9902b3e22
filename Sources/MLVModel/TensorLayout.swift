/// Where the tensors of a model file begin and end, so the chunker can cut there.
///
/// Content-defined chunking resynchronises a few chunks after a change; in a checkpoint
/// where whole tensors are rewritten, those chunks straddling each rewritten tensor's
/// edges are stored again though their bytes outside the tensor did not change. Cutting
/// at every tensor boundary as well makes a rewritten tensor cost its own bytes and no
/// more. Only the file's own header decides the boundaries, so equal files still cut
/// equally and deduplicate.
public enum TensorLayout {
    /// The largest safetensors header mlv reads (the format's own limit is 100 MB).
    static let maxHeader = 100_000_000
    /// More tensors than this: chunk the file as plain bytes.
    static let maxTensors = 1 << 20

    /// The tensor boundaries of a safetensors file (an 8-byte little-endian header length,
    /// a JSON header mapping names to `{"dtype","shape","data_offsets":[begin,end]}`, then
    /// the data): the end of the header and every tensor's start and end, as offsets into
    /// the file, strictly inside it, ascending. Nil when `data` is not a well-formed
    /// safetensors file, which is then chunked as plain bytes.
    public static func safetensorsBoundaries(_ data: UnsafeRawBufferPointer) -> [Int]? {
        guard data.count > 9 else { return nil }
        var length = 0
        for i in 0..<8 { length |= Int(data[i]) << (8 * i) }
        guard length >= 2, length <= maxHeader, length <= data.count - 8, data[8] == UInt8(ascii: "{") else { return nil }
        let base = 8 + length
        guard let json = try? JSON.parse(Array(data[8..<base])), let tensors = json.object,
              tensors.count <= maxTensors + 1 else { return nil }
        var cuts: [Int] = [base]
        cuts.reserveCapacity(2 * tensors.count + 1)
        for (name, tensor) in tensors where name != "__metadata__" {
            guard let offsets = tensor["data_offsets"]?.array, offsets.count == 2,
                  let begin = offsets[0].int, let end = offsets[1].int,
                  begin >= 0, begin <= end, end <= Int64(data.count - base) else { return nil }
            cuts.append(base + Int(begin))
            cuts.append(base + Int(end))
        }
        cuts.sort()
        var result: [Int] = []
        result.reserveCapacity(cuts.count)
        for c in cuts where c > 0 && c < data.count && c != result.last { result.append(c) }
        return result
    }
}
