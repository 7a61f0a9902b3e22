import MLVModel
import Testing

/// Safetensors header parsing for tensor-aligned chunking: boundaries only from a
/// well-formed header, nil (plain chunking) for anything else.
@Suite struct TensorLayoutTests {
    /// A safetensors file: header length, header JSON padded with spaces, then `dataBytes`.
    func file(_ header: String, pad: Int = 0, dataBytes: Int) -> [UInt8] {
        let h = Array(header.utf8) + [UInt8](repeating: 0x20, count: pad)
        var out: [UInt8] = []
        for i in 0..<8 { out.append(UInt8((h.count >> (8 * i)) & 0xff)) }
        return out + h + [UInt8](repeating: 7, count: dataBytes)
    }

    func boundaries(_ bytes: [UInt8]) -> [Int]? {
        bytes.withUnsafeBytes { TensorLayout.safetensorsBoundaries($0) }
    }

    @Test func wellFormedHeaderGivesHeaderEndAndEveryTensorEdge() {
        let header = #"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[4],"data_offsets":[100,116]},"a":{"dtype":"F32","shape":[25],"data_offsets":[0,100]},"c":{"dtype":"F32","shape":[0],"data_offsets":[116,116]}}"#
        let bytes = file(header, pad: 3, dataBytes: 200)
        let base = 8 + header.utf8.count + 3
        #expect(boundaries(bytes) == [base, base + 100, base + 116])
    }

    @Test func aTensorEndingAtTheFileEndAddsNoBoundaryThere() {
        let header = #"{"a":{"dtype":"U8","shape":[10],"data_offsets":[0,10]}}"#
        let bytes = file(header, dataBytes: 10)
        #expect(boundaries(bytes) == [8 + header.utf8.count])
    }

    @Test(arguments: [
        #"["not an object"]"#,
        #"{"a":{"dtype":"F32","data_offsets":[0,999]}}"#,
        #"{"a":{"dtype":"F32","data_offsets":[10,5]}}"#,
        #"{"a":{"dtype":"F32","data_offsets":[-1,5]}}"#,
        #"{"a":{"dtype":"F32","data_offsets":[0]}}"#,
        #"{"a":{"dtype":"F32","data_offsets":["0","5"]}}"#,
        #"{"a":{"dtype":"F32"}}"#,
        #"{"a":1,"a":2}"#,
    ])
    func malformedHeadersFallBackToPlainChunking(header: String) {
        #expect(boundaries(file(header, dataBytes: 64)) == nil)
    }

    @Test func headerLengthBeyondTheFileOrNotJSONIsNotSafetensors() {
        var bytes = file(#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, dataBytes: 1)
        bytes[0] = 0xff; bytes[1] = 0xff
        #expect(boundaries(bytes) == nil)
        #expect(boundaries(Array("plain text, not a model file at all".utf8)) == nil)
        #expect(boundaries([UInt8](repeating: 0, count: 4096)) == nil)
    }
}
