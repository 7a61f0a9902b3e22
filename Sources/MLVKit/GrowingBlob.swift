import Dispatch
import MLVBasics
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// Stores a file that another part of mlv is still appending to (a run's terminal log)
/// as one blob, while it grows: a background queue cuts the chunks whose end is certain
/// (at least the chunker's maximum size of data after their start is in the file),
/// hashes, compresses and stores them; `finish` cuts and stores the rest.
///
/// FastCDC cut points depend only on the bytes from a chunk's start, so the chunks (and
/// the blob id) are exactly those of storing the finished file at once. Memory stays at
/// one read (1 MiB) plus one chunk, whatever the file's size, and the work overlaps the
/// command instead of following it.
final class GrowingBlob: @unchecked Sendable {
    private let path: String
    private let writer: PackWriter
    private let chunker: FastCDC
    private let queue = DispatchQueue(label: "mlv.run.growing-blob")
    private let group = DispatchGroup()
    /// Signalled by `finish`: the loop stops waiting at once.
    private let wake = DispatchSemaphore(value: 0)
    private var buffer = [UInt8](repeating: 0, count: 1 << 20)
    // Touched only on `queue` (and by `finish` after the loop has ended).
    private var offset = 0
    private var pending: [UInt8] = []
    private var whole = SHA256()
    private var chunks: [(id: ObjectID, length: Int)] = []
    private var failure: Error?

    init(path: String, writer: PackWriter, chunker: ChunkerParameters) throws {
        self.path = path
        self.writer = writer
        self.chunker = try wrap { try FastCDC(chunker) }
    }

    /// Starts storing in the background, looking for new data every `intervalMilliseconds`.
    func start(intervalMilliseconds: Int = 100) {
        queue.async(group: group) { [self] in
            while true {
                do { try advance(final: false) } catch { failure = error; return }
                if wake.wait(timeout: .now() + .milliseconds(intervalMilliseconds)) == .success { return }
            }
        }
    }

    /// Stores what remains (the file must be complete) and returns the blob id.
    /// - Throws: the first read or store error.
    func finish() throws -> ObjectID {
        wake.signal()
        group.wait()
        if let failure { throw failure }
        try advance(final: true)
        let blob = whole.finalizeAndReset()
        if chunks.isEmpty {
            try [UInt8]().withUnsafeBytes { empty in try wrap { try writer.put(blob, kind: .chunk, bytes: empty, compression: .never) } }
        } else if chunks.count > 1 {
            try wrap { try writer.put(blob, kind: .chunkList, bytes: ChunkList.encode(chunks), compression: .never) }
        }
        return blob
    }

    /// Reads what was appended and stores every chunk whose end is certain (every chunk,
    /// when `final`).
    private func advance(final: Bool) throws {
        let fd = try wrap { try FS.open(path, O_RDONLY | O_CLOEXEC) }
        defer { FS.close(fd) }
        while true {
            let n = try buffer.withUnsafeMutableBytes { b in try wrap { try FS.pread(fd, into: b, at: offset, path: path) } }
            if n <= 0 { break }
            offset += n
            pending.append(contentsOf: buffer[0..<n])
            try cut(final: false)
            if n < buffer.count { break }
        }
        if final { try cut(final: true) }
    }

    private func cut(final: Bool) throws {
        let maxChunk = chunker.parameters.max
        var start = 0
        try pending.withUnsafeBytes { data in
            while start < data.count && (final || data.count - start >= maxChunk) {
                let length = chunker.cut(UnsafeRawBufferPointer(rebasing: data[start...]))
                let piece = UnsafeRawBufferPointer(rebasing: data[start..<(start + length)])
                whole.update(piece)
                let id = SHA256.hash(piece)
                try wrap { try writer.put(id, kind: .chunk, bytes: piece, compression: .auto) }
                chunks.append((id, length))
                start += length
            }
        }
        if start > 0 { pending.removeFirst(start) }
    }
}
