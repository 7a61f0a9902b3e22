// libFuzzer target: the stored-name validator (`PathRules`) that stands between a tree
// written by anyone and the file system at checkout. Properties: an accepted name has no
// slash, backslash, NUL or control character and is not `.`, `..` or a `.mlv` look-alike;
// artifact names and collision checks never crash.
import MLVModel

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPath(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let text = String(validating: bytes, as: UTF8.self) else { return 0 }
    if PathRules.problem(withName: text) == nil {
        if text.isEmpty || text == "." || text == ".." { fatalError("accepted '\(text)'") }
        if text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") }) {
            fatalError("accepted a name with a separator or control character")
        }
        if PathRules.looksLikeStore(text) { fatalError("accepted a .mlv look-alike") }
    }
    _ = PathRules.problem(withRelativePath: text)
    _ = ArtifactName.problem(with: text)
    _ = PathRules.collisionKey(text)
    let names = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    _ = PathRules.firstCollision(names)
    return 0
}
