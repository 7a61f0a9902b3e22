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

    static let versionCrashPoints = PublishCrashPoints(before: "ref.version.before-link", after: "ref.version.after-link")
    static let headCrashPoints = PublishCrashPoints(before: "ref.head.before-rename", after: "ref.head.after-rename")

    private func dir(_ kind: String, _ name: String) -> String { "\(root)/\(kind)/\(name)" }

    /// Every name that has refs of `kind`, sorted.
    public func names(kind: String) throws -> [String] {
        let path = "\(root)/\(kind)"
        guard FS.isDirectory(path) else { return [] }
        return try io { try FS.listDirectory(path) }.map(\.name).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// Creates `name@vN` pointing at `id` when that number is free (a version taken from
    /// a remote keeps its number).
    /// - Returns: false when the version already exists (whatever it points at).
    public func createVersion(kind: String, name: String, number: Int, id: ObjectID) throws -> Bool {
        let path = dir(kind, name) + "/versions"
        try io { try FS.makeDirectories(path) }
        return try io { try FS.createExclusive(path + "/\(number)", Array((id.hex + "\n").utf8)) }
    }

    /// Points an existing `name@vN` at another manifest. Only `mlv pull` does this, when the
    /// remote made the same number first: the local manifest has already been given a new
    /// number, and the remote's takes this one. Temp file, fsync, rename.
    public func repointVersion(kind: String, name: String, number: Int, id: ObjectID) throws {
        try io { try FS.atomicWrite(dir(kind, name) + "/versions/\(number)", Array((id.hex + "\n").utf8)) }
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
            if try io({ try FS.createExclusive(path + "/\(next)", Array((id.hex + "\n").utf8), crashPoints: Self.versionCrashPoints) }) {
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
                           expected: expected, new: new, crashPoints: nil)
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
        let held = try lockHead(kind: kind, name: name)
        defer { held.release() }
        try held.expect(expected)
        try held.write(new)
    }

    /// Takes `name`'s `head.lock`, so a caller can check the head, write what the move
    /// needs, and move it, with nobody else moving it in between.
    /// - Throws: `StoreError.locked` when another writer holds the lock (naming its owner).
    public func lockHead(kind: String, name: String) throws -> HeldRef {
        try lockChainHead("\(kind)/\(name)/head", display: "\(kind):\(name) head")
    }

    /// The newest event of the chain whose head is at `relative` under the refs root
    /// (`model/<name>/head`, `taint/head`), or nil.
    public func chainHead(_ relative: String) throws -> ObjectID? {
        let path = root + "/" + relative
        guard FS.exists(path) else { return nil }
        return try readRef(path)
    }

    /// Takes the lock of the chain head at `relative` (see `lockHead`).
    /// - Throws: `StoreError.locked` when another writer holds the lock (naming its owner).
    public func lockChainHead(_ relative: String, display: String) throws -> HeldRef {
        let path = root + "/" + relative
        return try lockRef(directory: FS.parent(of: path), file: FS.baseName(of: path), display: display,
                           crashPoints: Self.headCrashPoints)
    }

    private func lockRef(directory: String, file: String, display: String, crashPoints: PublishCrashPoints?) throws -> HeldRef {
        try io { try FS.makeDirectories(directory) }
        let path = directory + "/" + file
        do {
            return HeldRef(path: path, display: display, crashPoints: crashPoints, lock: try LockFile.acquire(path + ".lock"))
        } catch let e as LockFile.Failure {
            throw StoreError.locked(e.description)
        }
    }

    /// Takes `<file>.lock` with O_CREAT|O_EXCL, checks the current value against
    /// `expected`, then writes `new` (temp file, fsync, rename, fsync the directory) or
    /// removes the file when `new` is nil.
    private func compareAndSwap(directory: String, file: String, display: String, expected: ObjectID?, new: ObjectID?,
                                crashPoints: PublishCrashPoints?) throws {
        let held = try lockRef(directory: directory, file: file, display: display, crashPoints: crashPoints)
        defer { held.release() }
        try held.expect(expected)
        try held.write(new)
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
        try Self.readRef(path)
    }

    /// Reads and validates one ref file.
    /// - Throws: `StoreError.badRef` naming the path, `.io` when unreadable.
    public static func readRef(_ path: String) throws -> ObjectID {
        try parseRef(try io { try FS.readFile(path) }, path: path)
    }

    /// Parses the bytes of a ref file: exactly 64 hex digits and a newline.
    /// - Throws: `StoreError.badRef` naming `path`.
    public static func parseRef(_ bytes: [UInt8], path: String) throws -> ObjectID {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasSuffix("\n"), let id = ObjectID(hex: text.dropLast()) else {
            throw StoreError.badRef(path: path, reason: bytes.isEmpty ? "empty file" : "does not hold an object id")
        }
        return id
    }
}

/// A ref whose lock file this process holds: nobody else moves the ref until `release`.
public final class HeldRef: @unchecked Sendable {
    public let path: String
    private let display: String
    private let crashPoints: PublishCrashPoints?
    private let lock: LockFile

    init(path: String, display: String, crashPoints: PublishCrashPoints?, lock: LockFile) {
        self.path = path
        self.display = display
        self.crashPoints = crashPoints
        self.lock = lock
    }

    /// The ref's current target, nil when it does not exist.
    /// - Throws: `StoreError.badRef` for a damaged ref file.
    public func current() throws -> ObjectID? {
        FS.exists(path) ? try RefStore.readRef(path) : nil
    }

    /// - Throws: `StoreError.refChanged` when the ref is not at `expected` (nil: absent).
    public func expect(_ expected: ObjectID?) throws {
        let now = try current()
        guard now == expected else {
            throw StoreError.refChanged(ref: display, expected: expected?.short ?? "unset", found: now?.short ?? "unset")
        }
    }

    /// Points the ref at `new` (temp file, fsync, rename, fsync the directory), or removes
    /// it when `new` is nil.
    /// - Throws: `StoreError.io`.
    public func write(_ new: ObjectID?) throws {
        if let new {
            try io { try FS.atomicWrite(path, Array((new.hex + "\n").utf8), crashPoints: crashPoints) }
        } else {
            try io {
                try FS.unlink(path)
                try FS.fsyncDirectory(FS.parent(of: path))
            }
        }
    }

    /// Removes the lock file.
    public func release() {
        lock.release()
    }
}
