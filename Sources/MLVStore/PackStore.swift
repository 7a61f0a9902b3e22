import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// The local object store: pack files and their indexes in one directory.
public final class PackStore: ObjectStore, @unchecked Sendable {
    public let directory: String
    private let indexes = Locked<[PackIndex]>([])
    private let descriptors = Locked<[String: PackDescriptor]>([:])
    private let tolerateDamage: Bool
    private let damaged = Locked<[(name: String, error: StoreError)]>([])

    /// Opens the packs in `directory`, checking every index.
    /// - Parameter tolerateDamage: skip an index that fails its checks (listing it in
    ///   `damagedIndexes`) instead of refusing to open; for repair only.
    /// - Throws: `StoreError.corruptFile` for a damaged index, `.io` when unreadable.
    public init(directory: String, tolerateDamage: Bool = false) throws {
        self.directory = directory
        self.tolerateDamage = tolerateDamage
        try reload()
    }

    /// The indexes skipped as damaged when the store was opened with `tolerateDamage`.
    public var damagedIndexes: [(name: String, error: StoreError)] { damaged.withLock { $0 } }

    /// Re-reads the list of indexes (after a commit or gc).
    ///
    /// A process opening the store does not hold the store lock, so a `gc` may delete an
    /// index between the directory listing and its open. gc commits the packs it copies
    /// live objects into before it deletes anything, so such a listing is simply listed
    /// again: the second listing holds the new packs. Only an index that stays listed and
    /// still cannot be opened is an error.
    public func reload() throws {
        var attempt = 0
        while true {
            attempt += 1
            do {
                try reloadOnce()
                return
            } catch StoreError.io(let e) where e.isNotFound && attempt < Self.reloadAttempts {
                continue
            }
        }
    }

    /// How many listings `reload` tries while indexes vanish under it.
    static let reloadAttempts = 20

    private func reloadOnce() throws {
        var found: [PackIndex] = []
        var bad: [(name: String, error: StoreError)] = []
        let known = indexes.withLock { Dictionary(uniqueKeysWithValues: $0.map { ($0.name, $0) }) }
        for name in try packNames() {
            if let existing = known[name] { found.append(existing); continue }
            do {
                found.append(try PackIndex(indexPath: directory + "/pack-\(name).idx",
                                           packPath: directory + "/pack-\(name).pack", name: name))
            } catch StoreError.corruptFile(let path, let reason) where tolerateDamage {
                // Only damage: an index from a newer mlv, or one that cannot be read, still stops us.
                bad.append((name, .corruptFile(path: path, reason: reason)))
            }
        }
        indexes.withLock { $0 = found }
        damaged.withLock { $0 = bad }
    }

    /// Names of packs that have an index, sorted.
    public func packNames() throws -> [String] {
        try io { try FS.listDirectory(directory) }
            .compactMap { e -> String? in
                guard e.name.hasPrefix("pack-"), e.name.hasSuffix(".idx") else { return nil }
                return String(e.name.dropFirst(5).dropLast(4))
            }
            .sorted()
    }

    public var packIndexes: [PackIndex] { indexes.withLock { $0 } }

    /// Where `id` is stored, searching every index.
    public func locate(_ id: ObjectID) -> (PackIndex, IndexEntry)? {
        for index in packIndexes {
            if let e = index.find(id) { return (index, e) }
        }
        return nil
    }

    public func contains(_ id: ObjectID) -> Bool { locate(id) != nil }

    public func info(_ id: ObjectID) -> (kind: ObjectKind, size: Int)? {
        locateForRead(id).map { ($0.1.kind, $0.1.rawLength) }
    }

    /// `locate`, and on a miss re-read the list of packs once: another process may have
    /// committed a pack since this handle opened (its ref is how we learned the id).
    /// Writers' dedup checks use `contains`, which never reloads: a miss is their
    /// common case.
    func locateForRead(_ id: ObjectID) -> (PackIndex, IndexEntry)? {
        if let found = locate(id) { return found }
        guard let names = try? packNames(), names != packIndexes.map(\.name).sorted() else { return nil }
        try? reload()
        return locate(id)
    }

    public func read(_ id: ObjectID) throws -> (kind: ObjectKind, bytes: [UInt8]) {
        try followingGC {
            guard let (index, entry) = locateForRead(id) else { throw StoreError.missingObject(id) }
            let bytes = try readRecord(index, entry)
            try bytes.withUnsafeBytes { try verify(id, entry.kind, $0, pack: index.packPath) }
            return (entry.kind, bytes)
        }
    }

    /// Runs a read; when the pack it found has been deleted since this handle listed the
    /// packs (readers take no lock, and gc deletes a pack only after committing copies of
    /// its live objects), lists the packs again and retries once.
    private func followingGC<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch StoreError.io(let e) where e.isNotFound {
            try reload()
            return try body()
        }
    }

    /// The object's raw bytes with the record's own checks (header, XXH3 checksum,
    /// exact decompressed length) but without re-hashing. For chunks inside a chunk
    /// list, whose caller verifies the SHA-256 of the reassembled blob.
    /// - Throws: `StoreError.missingObject` or `.corruptObject`.
    public func readUnverified(_ id: ObjectID) throws -> (kind: ObjectKind, bytes: [UInt8]) {
        try followingGC {
            guard let (index, entry) = locateForRead(id) else { throw StoreError.missingObject(id) }
            return (entry.kind, try readRecord(index, entry))
        }
    }

    /// Reads a record's stored bytes and checks its header and checksum.
    func readStored(_ index: PackIndex, _ entry: IndexEntry) throws -> [UInt8] {
        let pack = try descriptor(index.packPath)
        // Held to the end of the read: `closeDescriptors` on another thread only drops
        // the cache's hold, so the number cannot be closed and reused under this pread.
        return try withExtendedLifetime(pack) { try readStored(pack.fd, size: pack.size, index, entry) }
    }

    private func readStored(_ fd: Int32, size: Int, _ index: PackIndex, _ entry: IndexEntry) throws -> [UInt8] {
        // Check the record fits before allocating for it: a crafted length cannot make
        // mlv allocate more than the pack holds.
        guard entry.offset + PackFormat.recordHeaderSize + entry.storedLength <= size else {
            throw StoreError.corruptObject(entry.id, pack: index.packPath, reason: "pack is truncated or the index points past it")
        }
        var record = [UInt8](repeating: 0, count: PackFormat.recordHeaderSize + entry.storedLength)
        let n = try record.withUnsafeMutableBytes { b in
            try io { try FS.pread(fd, into: b, at: entry.offset, path: index.packPath) }
        }
        guard n == record.count else {
            throw StoreError.corruptObject(entry.id, pack: index.packPath, reason: "pack is truncated")
        }
        return try record.withUnsafeBytes { try PackFormat.checkRecord($0, entry, source: index.packPath) }
    }

    /// The raw (decompressed) bytes of a record, checked but not hash-verified.
    func readRecord(_ index: PackIndex, _ entry: IndexEntry) throws -> [UInt8] {
        try PackFormat.decodePayload(try readStored(index, entry), entry, source: index.packPath, verifyHash: false)
    }

    private func descriptor(_ path: String) throws -> PackDescriptor {
        if let d = descriptors.withLock({ $0[path] }) { return d }
        let fd = try io { try FS.open(path, O_RDONLY) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            FS.close(fd)
            throw StoreError.io(FileSystemError(call: "fstat", path: path, errno: e))
        }
        let opened = PackDescriptor(fd: fd, size: Int(st.st_size))
        // Another thread may have opened the same pack meanwhile: ours closes on release.
        return descriptors.withLock { d in
            if let existing = d[path] { return existing }
            d[path] = opened
            return opened
        }
    }

    /// Drops the cached descriptors (before files are removed by gc). Each one closes as
    /// soon as no read in flight holds it, never under a read on another thread (whose
    /// descriptor number another open could otherwise take over).
    public func closeDescriptors() {
        descriptors.withLock { $0 = [:] }
    }

    /// A writer that appends new packs to this store.
    public func writer() -> PackWriter {
        PackWriter(store: self, directory: directory)
    }
}

/// An open pack file, shared by the cache and the reads using it, closed exactly once:
/// when the last of them lets go.
final class PackDescriptor: @unchecked Sendable {
    let fd: Int32
    let size: Int

    init(fd: Int32, size: Int) {
        self.fd = fd
        self.size = size
    }

    deinit { FS.close(fd) }
}

extension PackStore {
    /// Walks a pack file's records from the start without its index (for salvage when the
    /// index is damaged), handing `body` each record that passes every check a read makes:
    /// a known kind and flags, the record checksum, exact decompression, and for every
    /// kind but chunk lists the SHA-256 of the content. A record that fails is counted and
    /// skipped when its header still gives its length; the walk stops at a header that
    /// does not fit in the file.
    /// - Returns: how many records failed, and whether the walk stopped before the end.
    /// - Throws: `.io` when the pack cannot be read, or what `body` throws.
    public static func salvageRecords(packPath: String,
                                      _ body: (IndexEntry, UnsafeRawBufferPointer) throws -> Void) throws -> (lost: Int, truncated: Bool) {
        let file = try io { try MappedFile(path: packPath) }
        let b = file.bytes
        guard b.count >= PackFormat.packMagic.count, Array(b[0..<PackFormat.packMagic.count]) == PackFormat.packMagic else {
            return (0, b.count > 0)
        }
        var offset = PackFormat.packMagic.count, lost = 0
        while offset < b.count {
            guard offset + PackFormat.recordHeaderSize <= b.count else { return (lost, true) }
            let id = b.readID(at: offset)
            let kind = ObjectKind(rawValue: b[offset + 32]), flags = b[offset + 33]
            let stored = Int(b.readLE(UInt32.self, at: offset + 36)), raw = Int(b.readLE(UInt32.self, at: offset + 40))
            let payloadStart = offset + PackFormat.recordHeaderSize
            guard let kind, flags & ~PackFormat.flagCompressed == 0, payloadStart + stored <= b.count else { return (lost, true) }
            let payload = UnsafeRawBufferPointer(rebasing: b[payloadStart..<(payloadStart + stored)])
            let entry = IndexEntry(id: id, offset: offset, storedLength: stored, rawLength: raw, kind: kind, flags: flags)
            offset = payloadStart + stored
            guard b.readLE(UInt32.self, at: entry.offset + 44) == UInt32(truncatingIfNeeded: XXHash.xxh3_64(payload)) else {
                lost += 1
                continue
            }
            do {
                if entry.isCompressed {
                    let bytes = try Deflate.decompress(payload, expectedSize: raw)
                    try bytes.withUnsafeBytes { try verify(id, kind, $0, pack: packPath) }
                } else {
                    guard stored == raw else { lost += 1; continue }
                    try verify(id, kind, payload, pack: packPath)
                }
            } catch {
                lost += 1
                continue
            }
            try body(entry, payload)
        }
        return (lost, false)
    }

    /// The records of a pack whose index is sound that fail a read's checks (header,
    /// checksum, exact decompression, and the SHA-256 of every kind but chunk lists), each
    /// with the error a read gives. Reads every record of the pack.
    /// - Throws: `.io` when the pack cannot be read at all (not damage: a fault).
    public func damagedRecords(_ index: PackIndex) throws -> [(entry: IndexEntry, error: StoreError)] {
        var bad: [(IndexEntry, StoreError)] = []
        for entry in index.entries {
            do {
                let bytes = try readRecord(index, entry)
                try bytes.withUnsafeBytes { try verify(entry.id, entry.kind, $0, pack: index.packPath) }
            } catch let e as StoreError {
                if case .io = e { throw e }
                bad.append((entry, e))
            }
        }
        return bad
    }

    /// A record's stored (possibly compressed) bytes, checksum-checked, for copying into
    /// a new pack unchanged.
    public func readRecordForRepack(_ index: PackIndex, _ entry: IndexEntry) throws -> [UInt8] {
        try readStored(index, entry)
    }
}
