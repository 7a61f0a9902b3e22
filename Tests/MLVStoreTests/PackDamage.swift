import MLVBasics
import MLVTestSupport
import Testing

@testable import MLVStore

#if canImport(Glibc)
import Glibc
#endif

/// Ways to damage pack and index files on disk, for the corruption tests. They call
/// the C library directly so an installed fault injector never gets in the way.
enum PackDamage {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        try FS.readFile(path)
    }

    /// Replaces the file's content (pack and index files are read-only, so chmod first).
    static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        _ = chmod(path, 0o644)
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileSystemError(call: "open", path: path, errno: errno) }
        defer { Glibc.close(fd) }
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw FileSystemError(call: "write", path: path, errno: errno) }
    }

    /// XORs the byte at `offset` with `mask`.
    static func flipByte(_ path: String, at offset: Int, mask: UInt8 = 0x01) throws {
        var bytes = try readFile(path)
        guard offset < bytes.count else { throw Failure(description: "offset \(offset) past the end of \(path)") }
        bytes[offset] ^= mask
        try writeFile(path, bytes)
    }

    /// Cuts the file to its first `length` bytes.
    static func truncate(_ path: String, to length: Int) throws {
        let bytes = try readFile(path)
        try writeFile(path, Array(bytes.prefix(length)))
    }

    /// Flips a bit in the middle of a committed object's stored payload (in its record
    /// header when the payload is empty). With `fixChecksum` the record's XXH3 checksum is
    /// rewritten to match, so only the decompression or the SHA-256 check can catch it.
    static func flipPayload(of id: ObjectID, in store: PackStore, fixChecksum: Bool = false) throws {
        guard let (index, entry) = store.locate(id) else { throw StoreError.missingObject(id) }
        let payload = entry.offset + PackFormat.recordHeaderSize
        var bytes = try readFile(index.packPath)
        if entry.storedLength == 0 {
            bytes[entry.offset + 31] ^= 0x01
        } else {
            bytes[payload + entry.storedLength / 2] ^= 0x01
        }
        if fixChecksum {
            let sum = bytes.withUnsafeBytes { b in
                UInt32(truncatingIfNeeded: XXHash.xxh3_64(UnsafeRawBufferPointer(rebasing: b[payload..<(payload + entry.storedLength)])))
            }
            withUnsafeBytes(of: sum.littleEndian) { s in
                for i in 0..<4 { bytes[entry.offset + 44 + i] = s[i] }
            }
        }
        try writeFile(index.packPath, bytes)
    }

    /// Re-encodes an index file from `entries` (in the given order, duplicates kept) with
    /// valid checksums, so only the index's own structural checks can object.
    static func writeIndex(_ path: String, entries: [IndexEntry], packChecksum: UInt64, magic: [UInt8] = PackFormat.indexMagic) throws {
        var index = magic
        index.appendLE(UInt64(entries.count))
        for e in entries { e.append(to: &index) }
        index.appendLE(packChecksum)
        index.appendLE(XXHash.xxh3_64(index))
        try writeFile(path, index)
    }

    /// Sets the index's trailing checksum to match its bytes after an edit.
    static func resealIndex(_ path: String) throws {
        var bytes = try readFile(path)
        let body = bytes.count - 8
        let sum = XXHash.xxh3_64(Array(bytes[0..<body]))
        bytes.removeLast(8)
        bytes.appendLE(sum)
        try writeFile(path, bytes)
    }
}

/// Runs `body` and returns the `StoreError` it throws, recording an issue when it throws
/// nothing or something else.
@discardableResult
func storeError<T>(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T) -> StoreError? {
    #expect(throws: StoreError.self, sourceLocation: sourceLocation) { _ = try body() }
}

/// The body of an exit test: exits 0 when `body` returns, 3 when it throws (after writing
/// the error to stderr), so a signal in the result can only mean a crash.
func exitWithOutcome(_ body: () throws -> Void) -> Never {
    do {
        try body()
    } catch {
        let message = Array("\(error)\n".utf8)
        _ = message.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(3)
    }
    exit(0)
}
