import MLVBasics

/// git's index idea: per tracked file, the stat data seen when it was last hashed and
/// the blob id it had, so unchanged files are not read again.
///
/// An entry is trusted only when dev, ino, size, mtime, ctime and mode all match and
/// the file's mtime is older than the moment the scan that recorded it began (git's
/// racy-clean guard: a file modified in the same clock tick as the scan could change
/// again without its mtime moving). When only mtime or ctime moved but the size did not,
/// `quick` (XXH3-128 of the content) decides without SHA-256; a collision there can
/// only make mlv miss an edit that leaves size and XXH3-128 unchanged.
public struct StatCache: Sendable {
    public struct Entry: Sendable, Equatable {
        public var path: String
        public var mode: UInt32
        public var dev: UInt64
        public var ino: UInt64
        public var size: UInt64
        public var mtimeNanoseconds: Int64
        public var ctimeNanoseconds: Int64
        public var blob: ObjectID
        public var quickHigh: UInt64
        public var quickLow: UInt64

        public init(path: String, mode: UInt32, dev: UInt64, ino: UInt64, size: UInt64, mtimeNanoseconds: Int64,
                    ctimeNanoseconds: Int64, blob: ObjectID, quickHigh: UInt64, quickLow: UInt64) {
            self.path = path; self.mode = mode; self.dev = dev; self.ino = ino; self.size = size
            self.mtimeNanoseconds = mtimeNanoseconds; self.ctimeNanoseconds = ctimeNanoseconds
            self.blob = blob; self.quickHigh = quickHigh; self.quickLow = quickLow
        }

        /// True when the stat data matches exactly.
        public func matches(_ other: Entry) -> Bool {
            dev == other.dev && ino == other.ino && size == other.size && mode == other.mode
                && mtimeNanoseconds == other.mtimeNanoseconds && ctimeNanoseconds == other.ctimeNanoseconds
        }
    }

    /// The directory scanned (absolute).
    public var source: String
    /// The root tree the entries add up to.
    public var root: ObjectID
    /// When the scan that produced these entries began (ns since the epoch).
    public var scanStarted: Int64
    /// XXH3-128 of the scanned structure (kinds, paths, modes, symlink targets).
    public var structureHigh: UInt64
    public var structureLow: UInt64
    /// Entries in scan order: a directory's files (by name bytes) before its
    /// subdirectories', each subdirectory in name order.
    public var entries: [Entry]

    public init(source: String, root: ObjectID, scanStarted: Int64, structureHigh: UInt64 = 0, structureLow: UInt64 = 0,
                entries: [Entry]) {
        self.source = source
        self.root = root
        self.scanStarted = scanStarted
        self.structureHigh = structureHigh
        self.structureLow = structureLow
        self.entries = entries
    }

    /// Whether `entry`'s recorded stat can be trusted (git's racy-clean check).
    public func isRacy(_ entry: Entry) -> Bool {
        entry.mtimeNanoseconds >= scanStarted || entry.ctimeNanoseconds >= scanStarted
    }

    static let magic: [UInt8] = Array("MLVSTAT".utf8) + [2]

    /// The binary encoding, with an XXH3-64 trailer.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + entries.count * 120)
        out.append(contentsOf: Self.magic)
        out.append(root)
        out.appendLE(scanStarted)
        out.appendLE(structureHigh)
        out.appendLE(structureLow)
        let src = Array(source.utf8)
        out.appendLE(UInt32(src.count)); out.append(contentsOf: src)
        out.appendLE(UInt64(entries.count))
        for e in entries {
            let p = Array(e.path.utf8)
            out.appendLE(UInt32(p.count)); out.append(contentsOf: p)
            out.appendLE(e.mode); out.appendLE(e.dev); out.appendLE(e.ino); out.appendLE(e.size)
            out.appendLE(e.mtimeNanoseconds); out.appendLE(e.ctimeNanoseconds)
            out.append(e.blob); out.appendLE(e.quickHigh); out.appendLE(e.quickLow)
        }
        out.appendLE(XXHash.xxh3_64(out))
        return out
    }

    /// Decodes a cache file; nil when it is damaged or from another format (a cache is
    /// only ever an optimisation, so damage means "rescan", never an error).
    public static func decode(_ bytes: [UInt8]) -> StatCache? {
        bytes.withUnsafeBytes { b -> StatCache? in
            guard b.count >= 8 + 32 + 8 + 16 + 4 + 8 + 8, Array(b[0..<8]) == magic else { return nil }
            let body = b.count - 8
            guard b.readLE(UInt64.self, at: body) == XXHash.xxh3_64(UnsafeRawBufferPointer(rebasing: b[0..<body])) else { return nil }
            var at = 8
            func need(_ n: Int) -> Bool { at + n <= body }
            func string() -> String? {
                guard need(4) else { return nil }
                let n = Int(b.readLE(UInt32.self, at: at)); at += 4
                guard need(n) else { return nil }
                defer { at += n }
                return String(decoding: UnsafeRawBufferPointer(rebasing: b[at..<(at + n)]), as: UTF8.self)
            }
            let root = b.readID(at: at); at += 32
            let started = b.readLE(Int64.self, at: at); at += 8
            let structureHigh = b.readLE(UInt64.self, at: at), structureLow = b.readLE(UInt64.self, at: at + 8); at += 16
            guard let source = string(), need(8) else { return nil }
            let rawCount = b.readLE(UInt64.self, at: at); at += 8
            guard rawCount <= UInt64(body / 100) else { return nil }
            let count = Int(rawCount)
            var entries: [Entry] = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                guard let path = string(), need(4 + 8 * 5 + 32 + 16) else { return nil }
                let e = Entry(
                    path: path, mode: b.readLE(UInt32.self, at: at), dev: b.readLE(UInt64.self, at: at + 4),
                    ino: b.readLE(UInt64.self, at: at + 12), size: b.readLE(UInt64.self, at: at + 20),
                    mtimeNanoseconds: b.readLE(Int64.self, at: at + 28), ctimeNanoseconds: b.readLE(Int64.self, at: at + 36),
                    blob: b.readID(at: at + 44), quickHigh: b.readLE(UInt64.self, at: at + 76),
                    quickLow: b.readLE(UInt64.self, at: at + 84))
                at += 92
                entries.append(e)
            }
            guard at == body else { return nil }
            return StatCache(source: source, root: root, scanStarted: started, structureHigh: structureHigh,
                             structureLow: structureLow, entries: entries)
        }
    }
}
