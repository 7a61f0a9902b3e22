import Dispatch
import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// Appends objects to new pack files for one command; `commit` makes them visible.
///
/// Write order (see `docs/design.md`): records are appended to `tmp-*.pack`; when a pack
/// is full or at commit it is fsynced, renamed to `pack-<name>.pack`, and its index is
/// written and fsynced as `pack-<name>.idx.tmp`. `commit` renames every index into place
/// and fsyncs the directory once. An index file present means its pack is complete; a
/// crash before that leaves only files nothing refers to, which `gc` removes.
///
/// Safe to call from several threads: ids are claimed under a lock so a chunk seen twice
/// is stored once; compression runs outside the lock.
public final class PackWriter: ObjectWriter, @unchecked Sendable {
    private let store: PackStore
    private let directory: String
    private let targetSize: Int

    private struct State {
        var claimed = Set<ObjectID>()
        var entries: [IndexEntry] = []
        var fd: Int32 = -1
        var tmpPath = ""
        var size = 0
        var buffer = AlignedBuffer(capacity: 0)
        /// Whether the open pack was opened with O_DIRECT (cleared for its unaligned tail).
        var direct = false
        var checksum = XXH3Stream()
        var finishedIndexes: [(tmp: String, final: String, pack: String)] = []
        var committed = false
        var newBytes = 0
        var newObjects = 0
    }
    private let state = Locked(State())
    private static let bufferLimit = 8 << 20
    /// `MLV_DIRECT_IO=0` turns O_DIRECT pack writes off (for comparison and for file
    /// systems that accept the flag but misbehave with it).
    private static let useDirectIO: Bool = {
        guard let v = getenv("MLV_DIRECT_IO") else { return true }
        return String(cString: v) != "0"
    }()

    // Full buffers are written by one serial queue so hashing workers never wait on a
    // write(2) while holding the state lock. Order is kept because the queue is serial.
    private let ioQueue = DispatchQueue(label: "mlv.pack-writer.io")
    private let ioSlots = DispatchSemaphore(value: 4)
    private let ioError = Locked<Error?>(nil)
    private let spareBuffers = Locked<[AlignedBuffer]>([])

    init(store: PackStore, directory: String, targetSize: Int = PackFormat.targetPackSize) {
        self.store = store
        self.directory = directory
        self.targetSize = targetSize
    }

    /// Bytes and objects written so far (after compression, including record headers).
    public var written: (bytes: Int, objects: Int) {
        state.withLock { ($0.newBytes, $0.newObjects) }
    }

    public func has(_ id: ObjectID) -> Bool {
        store.contains(id) || state.withLock { $0.claimed.contains(id) }
    }

    @discardableResult
    public func put(_ id: ObjectID, kind: ObjectKind, bytes: UnsafeRawBufferPointer, compression: CompressionPolicy) throws -> Int {
        guard bytes.count <= PackFormat.maxObjectSize else {
            throw StoreError.corruptObject(id, pack: directory, reason: "object of \(bytes.count) bytes exceeds the 4 GiB object limit")
        }
        if store.contains(id) { return 0 }
        let fresh = state.withLock { $0.claimed.insert(id).inserted }
        if !fresh { return 0 }

        var compressed: [UInt8]? = nil
        switch compression {
        case .never: break
        case .auto:
            if Deflate.looksCompressible(bytes) {
                compressed = Deflate.compress(bytes, level: 1, limit: bytes.count - bytes.count / 10)
            }
        case .always:
            compressed = Deflate.compress(bytes, level: 6, limit: bytes.count - 1)
        }
        do {
            if let compressed {
                return try compressed.withUnsafeBytes {
                    try append(id, kind, stored: $0, rawLength: bytes.count, flags: PackFormat.flagCompressed)
                }
            }
            return try append(id, kind, stored: bytes, rawLength: bytes.count, flags: 0)
        } catch {
            _ = state.withLock { $0.claimed.remove(id) }
            throw error
        }
    }

    /// Copies an existing record (already compressed or not) into this writer, for gc.
    public func putStored(_ entry: IndexEntry, stored: UnsafeRawBufferPointer) throws {
        let fresh = state.withLock { $0.claimed.insert(entry.id).inserted }
        if !fresh { return }
        _ = try append(entry.id, entry.kind, stored: stored, rawLength: entry.rawLength, flags: entry.flags)
    }

    private func append(_ id: ObjectID, _ kind: ObjectKind, stored: UnsafeRawBufferPointer, rawLength: Int, flags: UInt8) throws -> Int {
        try state.withLock { s in
            if s.fd < 0 { try openPack(&s) }
            var header: [UInt8] = []
            header.reserveCapacity(PackFormat.recordHeaderSize)
            header.append(id)
            header.append(kind.rawValue)
            header.append(flags)
            header.append(contentsOf: [0, 0])
            header.appendLE(UInt32(stored.count))
            header.appendLE(UInt32(rawLength))
            header.appendLE(UInt32(truncatingIfNeeded: XXHash.xxh3_64(stored)))
            s.entries.append(IndexEntry(id: id, offset: s.size, storedLength: stored.count,
                                        rawLength: rawLength, kind: kind, flags: flags))
            try write(&s, header.withUnsafeBytes { $0 })
            try write(&s, stored)
            let n = header.count + stored.count
            s.newBytes += n
            s.newObjects += 1
            if s.size >= targetSize { try finishPack(&s) }
            return n
        }
    }

    /// Appends to the current buffer, handing full buffers to the I/O queue.
    private func write(_ s: inout State, _ bytes: UnsafeRawBufferPointer) throws {
        s.checksum.update(bytes)
        s.size += bytes.count
        var rest = bytes
        while !rest.isEmpty {
            let n = s.buffer.append(rest)
            rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            if s.buffer.room == 0 { try flush(&s, last: false) }
        }
    }

    /// Queues the current buffer for writing and takes a fresh one. Only full buffers
    /// (a multiple of the alignment) are written before `last`, so every O_DIRECT write
    /// starts at an aligned offset.
    ///
    /// Pack data is written with O_DIRECT where the file system allows it: the command
    /// fsyncs the pack anyway, and copying gigabytes into the page cache first costs as
    /// much CPU as hashing them. The unaligned tail of the last buffer is written after
    /// O_DIRECT is cleared; a file system that refuses O_DIRECT gets buffered writes.
    private func flush(_ s: inout State, last: Bool) throws {
        if let e = ioError.withLock({ $0 }) { throw e }
        guard s.buffer.count > 0 else { return }
        let full = s.buffer
        s.buffer = spareBuffers.withLock { $0.popLast() } ?? AlignedBuffer(capacity: Self.bufferLimit)
        s.buffer.count = 0
        let (fd, path, direct) = (s.fd, s.tmpPath, s.direct)
        if last { s.direct = false }
        ioSlots.wait()
        ioQueue.async { [ioSlots, ioError, spareBuffers] in
            defer { ioSlots.signal() }
            if ioError.withLock({ $0 != nil }) { return }
            do {
                let bytes = full.bytes
                let aligned = direct ? bytes.count / AlignedBuffer.alignment * AlignedBuffer.alignment : 0
                if aligned > 0 {
                    try io { try FS.writeAll(fd, UnsafeRawBufferPointer(rebasing: bytes[0..<aligned]), path: path) }
                }
                if aligned < bytes.count {
                    if direct { FS.setDirectIO(fd, false) }
                    try io { try FS.writeAll(fd, UnsafeRawBufferPointer(rebasing: bytes[aligned...]), path: path) }
                }
            } catch {
                ioError.withLock { if $0 == nil { $0 = error } }
            }
            spareBuffers.withLock { if $0.count < 4 { $0.append(full) } }
        }
    }

    /// Waits until every queued buffer is written; rethrows the first write error.
    private func drain() throws {
        ioQueue.sync {}
        if let e = ioError.withLock({ $0 }) { throw e }
    }

    private func openPack(_ s: inout State) throws {
        s.tmpPath = FS.temporaryName(for: directory + "/pack")
        s.fd = try io { try FS.open(s.tmpPath, O_WRONLY | O_CREAT | O_EXCL, mode: 0o444) }
        // O_DIRECT where the file system takes it (tmpfs, for one, does not).
        s.direct = Self.useDirectIO && FS.setDirectIO(s.fd, true)
        s.size = 0
        s.entries = []
        s.checksum = XXH3Stream()
        if s.buffer.capacity < Self.bufferLimit {
            s.buffer = spareBuffers.withLock { $0.popLast() } ?? AlignedBuffer(capacity: Self.bufferLimit)
        }
        s.buffer.count = 0
        try write(&s, PackFormat.packMagic.withUnsafeBytes { $0 })
    }

    /// Flushes and fsyncs the open pack, names it after its index, writes the index beside it.
    private func finishPack(_ s: inout State) throws {
        guard s.fd >= 0 else { return }
        try flush(&s, last: true)
        try drain()
        try io { try FS.fsync(s.fd, path: s.tmpPath) }
        FS.close(s.fd)
        s.fd = -1
        CrashPoint.hit("pack.data-synced")

        let (name, index) = PackFormat.encodeIndex(s.entries, packChecksum: s.checksum.digest)

        let packPath = directory + "/pack-\(name).pack"
        let indexFinal = directory + "/pack-\(name).idx"
        let indexTmp = indexFinal + ".tmp"
        s.entries = []
        if FS.exists(indexFinal) {
            // The same objects in the same order are already committed under this name
            // (a retry after a failed commit): never rename over a live pack.
            try? FS.unlink(s.tmpPath)
            return
        }
        try io { try FS.rename(s.tmpPath, packPath) }
        CrashPoint.hit("pack.renamed")
        // A leftover from a crash may exist (read-only): replace it, never write into it.
        try io { try FS.unlink(indexTmp) }
        let fd = try io { try FS.open(indexTmp, O_WRONLY | O_CREAT | O_EXCL, mode: 0o444) }
        defer { FS.close(fd) }
        try io {
            try FS.writeAll(fd, index, path: indexTmp)
            try FS.fsync(fd, path: indexTmp)
        }
        CrashPoint.hit("pack.index-written")
        s.finishedIndexes.append((indexTmp, indexFinal, packPath))
    }

    /// Makes every object put so far durable and visible to new readers.
    /// - Throws: `StoreError.io` when a write, fsync or rename fails; nothing is visible then.
    public func commit() throws {
        try state.withLock { s in
            try finishPack(&s)
            s.committed = true
            guard !s.finishedIndexes.isEmpty else { return }
            // The packs' renames must be durable before any index names them.
            try io { try FS.fsyncDirectory(directory) }
            CrashPoint.hit("pack.before-index-rename")
            while let (tmp, final, _) = s.finishedIndexes.first {
                try io { try FS.rename(tmp, final) }
                s.finishedIndexes.removeFirst()  // live now: abort must not touch it
                CrashPoint.hit("pack.index-renamed")
            }
            try io { try FS.fsyncDirectory(directory) }
            CrashPoint.hit("pack.committed")
        }
        try store.reload()
    }

    deinit {
        if !state.withLock({ $0.committed }) { abort() }
    }

    /// Drops what was written and not committed (best effort; gc removes leftovers).
    public func abort() {
        ioQueue.sync {}
        state.withLock { s in
            if s.fd >= 0 {
                FS.close(s.fd)
                s.fd = -1
                try? FS.unlink(s.tmpPath)
            }
            for (tmp, final, pack) in s.finishedIndexes {
                try? FS.unlink(tmp)
                // Only a pack no index names is ours to remove.
                if !FS.exists(final) { try? FS.unlink(pack) }
            }
            s.finishedIndexes = []
        }
    }
}
