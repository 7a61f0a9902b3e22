import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// Named pointers to manifests, kept as small files under `.mlv/refs`:
///
///     refs/<kind>/<name>/versions/<N>      create-only: NAME@vN never changes
///     refs/<kind>/<name>/aliases/<alias>   moved only by compare-and-swap
///     refs/<kind>/<name>/head              newest registry event; moved only by compare-and-swap
///     refs/runs/<run id>                   create-only: the run's manifest, written when it ends
///     refs/taint/head                      newest taint event; moved only by compare-and-swap
///
/// Each file holds one object id in hex and a newline. Versions are created with
/// `link(2)` (never replacing); aliases move under `<alias>.lock` (O_CREAT|O_EXCL),
/// after checking the expected old value, by atomic rename.
public final class RefStore: @unchecked Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    private func dir(_ kind: String, _ name: String) -> String { "\(root)/\(kind)/\(name)" }

    /// Every name that has refs of `kind`, sorted.
    public func names(kind: String) throws -> [String] {
        let path = "\(root)/\(kind)"
        guard FS.isDirectory(path) else { return [] }
        return try io { try FS.listDirectory(path) }.map(\.name).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// All versions of `name`, ascending by number.
    /// - Throws: `StoreError.badRef` for a damaged ref file.
    public func versions(kind: String, name: String) throws -> [(number: Int, id: ObjectID)] {
        let path = dir(kind, name) + "/versions"
        guard FS.isDirectory(path) else { return [] }
        var result: [(Int, ObjectID)] = []
        for entry in try io({ try FS.listDirectory(path) }) {
            guard let n = Int(entry.name), n > 0, String(n) == entry.name else { continue }
            result.append((n, try readRef(path + "/" + entry.name)))
        }
        return result.sorted { $0.0 < $1.0 }
    }

    /// The highest version of `name` and how many there are, reading only that one ref.
    /// - Throws: `StoreError.badRef` for a damaged ref file.
    public func latestVersion(kind: String, name: String) throws -> (number: Int, id: ObjectID, count: Int)? {
        let path = dir(kind, name) + "/versions"
        guard FS.isDirectory(path) else { return nil }
        var best = 0, count = 0
        for entry in try io({ try FS.listDirectory(path) }) {
            guard let n = Int(entry.name), n > 0, String(n) == entry.name else { continue }
            count += 1
            best = max(best, n)
        }
        guard best > 0 else { return nil }
        return (best, try readRef(path + "/\(best)"), count)
    }

    /// The manifest id of `name@vN`, or nil.
    public func version(kind: String, name: String, number: Int) throws -> ObjectID? {
        let path = dir(kind, name) + "/versions/\(number)"
        guard FS.exists(path) else { return nil }
        return try readRef(path)
    }

    /// Creates the next free version of `name` pointing at `id`; two writers racing get
    /// different numbers.
    /// - Returns: the version number.
    public func createNextVersion(kind: String, name: String, id: ObjectID) throws -> Int {
        let path = dir(kind, name) + "/versions"
        try io { try FS.makeDirectories(path) }
        var next = (try versions(kind: kind, name: name).last?.number ?? 0) + 1
        while true {
            if try io({ try FS.createExclusive(path + "/\(next)", Array((id.hex + "\n").utf8)) }) {
                return next
            }
            next += 1
        }
    }

    /// Records a finished run: creates `refs/runs/<run>` pointing at its manifest, never
    /// replacing one. Returns false when the run already has a record.
    public func createRun(_ run: String, id: ObjectID) throws -> Bool {
        let path = root + "/runs"
        try io { try FS.makeDirectories(path) }
        return try io { try FS.createExclusive(path + "/" + run, Array((id.hex + "\n").utf8)) }
    }

    /// The manifest id of a run, or nil when it has no record.
    public func run(_ run: String) throws -> ObjectID? {
        let path = root + "/runs/" + run
        guard FS.exists(path) else { return nil }
        return try readRef(path)
    }

    /// Every recorded run id, sorted.
    public func runIDs() throws -> [String] {
        let path = root + "/runs"
        guard FS.isDirectory(path) else { return [] }
        return try io { try FS.listDirectory(path) }.map(\.name).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// The alias's target, or nil when it is not set.
    public func alias(kind: String, name: String, alias: String) throws -> ObjectID? {
        let path = dir(kind, name) + "/aliases/\(alias)"
        guard FS.exists(path) else { return nil }
        return try readRef(path)
    }

    /// Every alias of `name` with its target.
    public func aliases(kind: String, name: String) throws -> [String: ObjectID] {
        let path = dir(kind, name) + "/aliases"
        guard FS.isDirectory(path) else { return [:] }
        var result: [String: ObjectID] = [:]
        for entry in try io({ try FS.listDirectory(path) }) where !entry.name.hasSuffix(".lock") && !entry.name.hasPrefix(".") {
            result[entry.name] = try readRef(path + "/" + entry.name)
        }
        return result
    }

    /// Moves an alias from `expected` (nil: must not exist) to `new` (nil: delete).
    /// - Throws: `StoreError.refChanged` when the alias is not at `expected`;
    ///   `StoreError.locked` when another writer holds its lock.
    public func updateAlias(kind: String, name: String, alias: String, expected: ObjectID?, new: ObjectID?) throws {
        try compareAndSwap(directory: dir(kind, name) + "/aliases", file: alias, display: "\(name)@\(alias)",
                           expected: expected, new: new)
    }

    /// The id of the newest event of `name`'s registry chain (`refs/<kind>/<name>/head`), or nil.
    public func head(kind: String, name: String) throws -> ObjectID? {
        try chainHead("\(kind)/\(name)/head")
    }

    /// Moves `name`'s head from `expected` (nil: must not exist) to `new`, by the same
    /// compare-and-swap as aliases.
    /// - Throws: `StoreError.refChanged` when the head is not at `expected`;
    ///   `StoreError.locked` when another writer holds its lock.
    public func updateHead(kind: String, name: String, expected: ObjectID?, new: ObjectID) throws {
        try updateChainHead("\(kind)/\(name)/head", display: "\(kind):\(name) head", expected: expected, new: new)
    }

    /// The newest event of the chain whose head is at `relative` under the refs root
    /// (`model/<name>/head`, `taint/head`), or nil.
    public func chainHead(_ relative: String) throws -> ObjectID? {
        let path = root + "/" + relative
        guard FS.exists(path) else { return nil }
        return try readRef(path)
    }

    /// Moves the chain head at `relative` by compare-and-swap.
    /// - Throws: `StoreError.refChanged`, `StoreError.locked`.
    public func updateChainHead(_ relative: String, display: String, expected: ObjectID?, new: ObjectID) throws {
        let path = root + "/" + relative
        try compareAndSwap(directory: FS.parent(of: path), file: FS.baseName(of: path), display: display,
                           expected: expected, new: new)
    }

    /// Takes `<file>.lock` with O_CREAT|O_EXCL, checks the current value against
    /// `expected`, then writes `new` (temp file, fsync, rename, fsync the directory) or
    /// removes the file when `new` is nil.
    private func compareAndSwap(directory: String, file: String, display: String, expected: ObjectID?, new: ObjectID?) throws {
        try io { try FS.makeDirectories(directory) }
        let path = directory + "/" + file
        let lock: LockFile
        do {
            lock = try LockFile.acquire(path + ".lock")
        } catch let e as LockFile.Failure {
            throw StoreError.locked(e.description)
        }
        defer { lock.release() }
        let current = FS.exists(path) ? try readRef(path) : nil
        guard current == expected else {
            throw StoreError.refChanged(ref: display, expected: expected?.short ?? "unset", found: current?.short ?? "unset")
        }
        if let new {
            try io { try FS.atomicWrite(path, Array((new.hex + "\n").utf8)) }
        } else {
            try io {
                try FS.unlink(path)
                try FS.fsyncDirectory(directory)
            }
        }
    }

    /// Every ref file under the store with its target, for gc and fsck. Damaged refs are
    /// returned as errors rather than skipped.
    public func allRefs() throws -> [(path: String, id: Result<ObjectID, StoreError>)] {
        var result: [(String, Result<ObjectID, StoreError>)] = []
        func walk(_ path: String) throws {
            for entry in try io({ try FS.listDirectory(path) }).sorted(by: { $0.name < $1.name }) {
                let child = path + "/" + entry.name
                if entry.name.hasPrefix(".") || entry.name.hasSuffix(".lock") { continue }
                if FS.isDirectory(child) {
                    try walk(child)
                } else {
                    do { result.append((child, .success(try readRef(child)))) }
                    catch let e as StoreError { result.append((child, .failure(e))) }
                }
            }
        }
        if FS.isDirectory(root) { try walk(root) }
        return result
    }

    /// Reads and validates one ref file.
    public func readRef(_ path: String) throws -> ObjectID {
        let bytes = try io { try FS.readFile(path) }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasSuffix("\n"), let id = ObjectID(hex: text.dropLast()) else {
            throw StoreError.badRef(path: path, reason: bytes.isEmpty ? "empty file" : "does not hold an object id")
        }
        return id
    }
}
