// libFuzzer target: the strict JSON parser and every decoder of stored JSON documents
// (trees, dataset, model and code manifests, events, the stage configuration).
// Properties checked besides "never crashes": whatever parses re-encodes canonically,
// and canonical bytes parse back to the same value and the same bytes.
import MLVModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzManifest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let json = try? JSON.parse(bytes) else { return 0 }
    let canonical = json.canonicalBytes()
    guard let again = try? JSON.parse(canonical) else { fatalError("canonical bytes do not parse: \(canonical)") }
    if again != json { fatalError("parse(canonical) differs from the value") }
    if again.canonicalBytes() != canonical { fatalError("canonical encoding is not stable") }
    _ = json.prettyString()
    _ = try? Tree.decode(bytes)
    _ = try? DatasetManifest(json: json)
    _ = try? ModelManifest(json: json)
    _ = try? CodeManifest(json: json)
    _ = try? Event(json: json)
    _ = try? StageConfig.decode(bytes)
    if let tree = try? Tree.decode(bytes), tree.canonicalBytes() != bytes {
        fatalError("Tree.decode accepted non-canonical bytes")
    }
    return 0
}
