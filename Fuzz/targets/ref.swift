// libFuzzer target: everything that parses a ref: the bytes of a ref file, the ref
// syntax people type (`NAME@vN#SPLIT`, `model:NAME@STAGE`, id prefixes), and registry
// events read back from the store.
import MLVBasics
import MLVModel
import MLVStore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRef(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let id = try? RefStore.parseRef(bytes, path: "fuzz") {
        guard bytes.count == 65, bytes.last == 10, ObjectID(hex: id.hex) == id else {
            fatalError("a ref file that is not one id and a newline was accepted")
        }
    }
    let text = String(decoding: bytes, as: UTF8.self)
    if let spec = try? RefSpec.parse(text) {
        _ = spec
    }
    _ = RefSpec.isIDPrefix(text)
    if let json = try? JSON.parse(bytes), let event = try? Event(json: json) {
        let again = try? Event(json: (try? JSON.parse(event.canonicalBytes())) ?? .null)
        if again != event { fatalError("an accepted event does not survive its own encoding") }
    }
    return 0
}
