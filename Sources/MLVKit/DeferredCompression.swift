import MLVBasics
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// Chunks that `mlv run` stored raw only because no CPU time was free to compress them
/// (see `IdleCompressor`), listed in `.mlv/cache/deferred-compression` (one hex id a
/// line) for `gc` to compress later. The list is advisory, like everything in `cache/`:
/// losing it loses only the chance to compress those chunks.
extension Repository {
    var deferredCompressionPath: String { cachePath + "/deferred-compression" }

    /// Appends `ids` to the list (errors are ignored: the list is advisory).
    func noteDeferredCompression(_ ids: [ObjectID]) {
        guard !ids.isEmpty else { return }
        let text = Array(ids.map { $0.hex + "\n" }.joined().utf8)
        try? FS.makeDirectories(cachePath)
        guard let fd = try? FS.open(deferredCompressionPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, mode: 0o644) else { return }
        defer { FS.close(fd) }
        try? text.withUnsafeBytes { try FS.writeAll(fd, $0, path: deferredCompressionPath) }
    }

    /// The ids in the list (lines that are not an id are skipped).
    func deferredCompression() -> Set<ObjectID> {
        guard let bytes = (try? FS.readFileIfExists(deferredCompressionPath)) ?? nil else { return [] }
        return Set(bytes.split(separator: 10).compactMap { ObjectID(hex: String(decoding: $0, as: UTF8.self)) })
    }

    /// Replaces the list with `ids` (removes it when empty).
    func setDeferredCompression(_ ids: Set<ObjectID>) {
        if ids.isEmpty {
            try? FS.unlink(deferredCompressionPath)
        } else {
            try? FS.atomicWrite(deferredCompressionPath, Array(ids.map { $0.hex + "\n" }.sorted().joined().utf8), durable: false)
        }
    }

    /// A raw record's bytes deflated (level 6: gc has the time), or nil when that does
    /// not save at least 10% or the sample says it will not.
    static func compressDeferred(_ raw: [UInt8]) -> [UInt8]? {
        raw.withUnsafeBytes { b in
            Deflate.looksCompressible(b) ? Deflate.compress(b, level: 6, limit: b.count - b.count / 10) : nil
        }
    }
}
