// libFuzzer target: the pack index reader, the stat cache decoder, and the record walk
// repair makes over a pack without its index. The input's first byte picks the mode
// (bit 1: stat cache, bit 2: pack walk, else index); the rest is the file.
// In "sealed" mode the harness rewrites the trailing XXH3 checksum to match, so the
// fuzzer gets past it to the structural checks (entry count, sorted unique ids, offsets,
// kinds) instead of stopping at the checksum every time.
import MLVBasics
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

private let scratch: String = {
    var template = Array("/tmp/mlv-fuzz-index.XXXXXX".utf8CString)
    guard let dir = mkdtemp(&template) else { fatalError("mkdtemp failed") }
    return String(cString: dir)
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPackIndex(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let mode = data[0]
    var bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if mode & 1 == 1, bytes.count >= 8 {
        let body = bytes.count - 8
        let sum = XXHash.xxh3_64(Array(bytes[0..<body]))
        withUnsafeBytes(of: sum.littleEndian) { for i in 0..<8 { bytes[body + i] = $0[i] } }
    }
    if mode & 2 == 2 {
        _ = StatCache.decode(bytes)
        return 0
    }
    if mode & 4 == 4 {
        // A pack walked without its index, as repair does.
        let pack = scratch + "/pack-y.pack"
        let fd = open(pack, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { fatalError("open \(pack) failed") }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        var previousEnd = 8
        _ = try? PackStore.salvageRecords(packPath: pack) { entry, stored in
            if entry.offset < previousEnd || stored.count != entry.storedLength { fatalError("records overlap or lengths disagree") }
            previousEnd = entry.offset + 48 + stored.count
            if previousEnd > bytes.count { fatalError("a record runs past the pack") }
        }
        return 0
    }
    let path = scratch + "/pack-x.idx"
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("open \(path) failed") }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    guard let index = try? PackIndex(indexPath: path, packPath: scratch + "/pack-x.pack", name: "x") else { return 0 }
    var previous: ObjectID?
    for entry in index.entries {
        if let previous, !(previous < entry.id) { fatalError("an accepted index is not sorted") }
        previous = entry.id
        guard index.find(entry.id) == entry else { fatalError("find does not return the entry it lists") }
    }
    _ = index.find(ObjectID(hex: String(repeating: "7", count: 64))!)
    return 0
}
