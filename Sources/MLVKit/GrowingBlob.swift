import Dispatch
import MLVBasics
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// Stores a file that another part of mlv is still appending to (a run's terminal log)
/// as one blob, while it grows: a background queue cuts the chunks whose end is certain
/// (a cut point was found before the end of what is in the file, or the chunker's maximum
/// size is there), hashes, compresses and stores them; `finish` cuts and stores the rest.
/// The whole blob's hash takes each byte as it is read. Looking every 10 ms keeps what is
/// left for `finish`, after the command has ended, to a few milliseconds of output.
///
/// FastCDC cut points depend only on the bytes from a chunk's start, so the chunks (and
/// the blob id) are exactly those of storing the finished file at once. Memory stays at
/// one read (1 MiB), one chunk and the compression backlog (`IdleCompressor`), whatever
/// the file's size, and the work overlaps the command instead of following it.
///
/// Compression is the expensive part (zlib on log text costs about as much CPU as a
/// program printing it), so it is left to an `IdleCompressor`: chunks are compressed
/// with CPU time the command does not want, and stored raw when it does.
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
    private var fd: Int32 = -1
    private var pending: [UInt8] = []
    private var whole = SHA256()
    private var chunks: [(id: ObjectID, length: Int)] = []
    private var failure: Error?
    private let compressor: IdleCompressor
    /// After `finish`: the chunks stored raw although they look compressible.
    private(set) var storedRaw: [ObjectID] = []

    init(path: String, writer: PackWriter, chunker: ChunkerParameters) throws {
        self.path = path
        self.writer = writer
        self.chunker = try wrap { try FastCDC(chunker) }
        compressor = IdleCompressor(writer: writer)
    }

    /// Starts storing in the background, looking for new data every `intervalMilliseconds`.
    func start(intervalMilliseconds: Int = 10) {
        queue.async(group: group) { [self] in
            while true {
                do { try advance(final: false) } catch { failure = error; return }
                if wake.wait(timeout: .now() + .milliseconds(intervalMilliseconds)) == .success { return }
            }
        }
    }

    /// Stops the background loop, storing nothing more (the run failed), and waits for it.
    func cancel() {
        wake.signal()
        group.wait()
        closeFile()
        try? compressor.finish()
    }

    private func closeFile() {
        if fd >= 0 { FS.close(fd) }
        fd = -1
    }

    /// Stores what remains (the file must be complete) and returns the blob id.
    /// - Throws: the first read or store error.
    func finish() throws -> ObjectID {
        wake.signal()
        group.wait()
        defer { closeFile() }
        if let failure {
            try? compressor.finish()
            throw failure
        }
        do { try advance(final: true) } catch {
            try? compressor.finish()
            throw error
        }
        try compressor.finish()
        storedRaw = compressor.storedRaw
        let blob = whole.finalizeAndReset()
        if chunks.isEmpty {
            _ = try [UInt8]().withUnsafeBytes { empty in try wrap { try writer.put(blob, kind: .chunk, bytes: empty, compression: .never) } }
        } else if chunks.count > 1 {
            try wrap { try writer.put(blob, kind: .chunkList, bytes: ChunkList.encode(chunks), compression: .never) }
        }
        return blob
    }

    /// Reads what was appended and stores every chunk whose end is certain (every chunk,
    /// when `final`).
    private func advance(final: Bool) throws {
        if fd < 0 { fd = try wrap { try FS.open(path, O_RDONLY | O_CLOEXEC) } }
        while true {
            let n = try buffer.withUnsafeMutableBytes { b in try wrap { try FS.pread(fd, into: b, at: offset, path: path) } }
            if n <= 0 { break }
            offset += n
            buffer.withUnsafeBytes { whole.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
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
            while start < data.count {
                let available = data.count - start
                let length = chunker.cut(UnsafeRawBufferPointer(rebasing: data[start...]))
                // A cut before the end of the data is where it will stay however much more
                // comes (each cut point depends only on the bytes before it); one at the end
                // is certain only at the maximum size.
                if !final && length == available && available < maxChunk { break }
                let piece = UnsafeRawBufferPointer(rebasing: data[start..<(start + length)])
                let id = SHA256.hash(piece)
                try compressor.put(id, piece)
                chunks.append((id, length))
                start += length
            }
        }
        if start > 0 { pending.removeFirst(start) }
    }
}

/// Stores chunks through a thread that compresses them with CPU time nobody else wants
/// (`IdleThread`, Linux `SCHED_IDLE`): on an idle machine every chunk is compressed (zlib
/// where it pays, as `CompressionPolicy.auto` decides) while the command runs; when the
/// CPUs are busy (the command itself, other work) chunks wait in a bounded backlog, a
/// chunk that does not fit is stored raw at once (without a copy), and `finish` stores
/// what is still waiting raw
/// rather than make the caller wait for compression. The stored bytes, and so the blob,
/// are the same either way; only their size on disk differs.
final class IdleCompressor: @unchecked Sendable {
    /// Chunks waiting for the compressing thread, at most this many bytes (by default).
    static let defaultBacklogLimit = 16 << 20

    private let writer: PackWriter
    private let backlogLimit: Int
    private struct State {
        var backlog: [(id: ObjectID, bytes: [UInt8])] = []
        var bytes = 0
        var stopped = false
        var failure: Error?
    }
    private let state = Locked(State())
    private let wake = DispatchSemaphore(value: 0)
    private var thread: DispatchGroup?
    /// Chunks stored raw for want of CPU time although they look compressible (for
    /// `Repository.noteDeferredCompression`). Touched only by `put` and `finish`.
    private(set) var storedRaw: [ObjectID] = []

    init(writer: PackWriter, backlogLimit: Int = IdleCompressor.defaultBacklogLimit) {
        self.writer = writer
        self.backlogLimit = backlogLimit
        thread = IdleThread.start { [self] in
            while true {
                wake.wait()
                let next: (id: ObjectID, bytes: [UInt8])? = state.withLock { s in
                    if s.stopped || s.backlog.isEmpty { return nil }
                    let item = s.backlog.removeFirst()
                    s.bytes -= item.bytes.count
                    return item
                }
                guard let next else {
                    if state.withLock({ $0.stopped }) { return }
                    continue
                }
                do {
                    _ = try next.bytes.withUnsafeBytes { b in try wrap { try writer.put(next.id, kind: .chunk, bytes: b, compression: .auto) } }
                } catch {
                    state.withLock { s in if s.failure == nil { s.failure = error } }
                }
            }
        }
    }

    /// Queues a copy of one chunk for compression, or stores it raw at once when the
    /// backlog is full (the compressing thread is behind: the CPUs are busy); stores it
    /// at once, compressed where it pays, when there is no compressing thread.
    /// - Throws: a store error, including an earlier one of the compressing thread.
    func put(_ id: ObjectID, _ bytes: UnsafeRawBufferPointer) throws {
        guard thread != nil else {
            try wrap { try writer.put(id, kind: .chunk, bytes: bytes, compression: .auto) }
            return
        }
        let (fits, failure) = state.withLock { s -> (Bool, Error?) in
            guard s.bytes + bytes.count <= backlogLimit else { return (false, s.failure) }
            s.bytes += bytes.count
            return (true, s.failure)
        }
        if let failure { throw failure }
        guard fits else {
            try storeRaw(id, bytes)
            return
        }
        let copy = Array(bytes)
        state.withLock { $0.backlog.append((id, copy)) }
        wake.signal()
    }

    /// Stops the compressing thread (after the chunk it is on) and stores what still
    /// waits raw.
    /// - Throws: the first store error.
    func finish() throws {
        guard let thread else { return }
        state.withLock { $0.stopped = true }
        wake.signal()
        thread.wait()
        self.thread = nil
        let (rest, failure) = state.withLock { s -> ([(id: ObjectID, bytes: [UInt8])], Error?) in
            defer { s.backlog = []; s.bytes = 0 }
            return (s.backlog, s.failure)
        }
        if let failure { throw failure }
        try storeRaw(rest)
    }

    private func storeRaw(_ items: [(id: ObjectID, bytes: [UInt8])]) throws {
        for item in items {
            try item.bytes.withUnsafeBytes { try storeRaw(item.id, $0) }
        }
    }

    private func storeRaw(_ id: ObjectID, _ bytes: UnsafeRawBufferPointer) throws {
        let written = try wrap { try writer.put(id, kind: .chunk, bytes: bytes, compression: .never) }
        if written > 0, Deflate.looksCompressible(bytes) { storedRaw.append(id) }
    }
}
