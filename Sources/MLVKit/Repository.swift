import MLVBasics
import MLVModel
import MLVRemote
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// An mlv repository: a directory holding a `.mlv` store.
///
///     .mlv/config            format version, chunker parameters, identity (canonical JSON)
///     .mlv/packs/            pack-<name>.pack + pack-<name>.idx
///     .mlv/refs/<kind>/<name>/versions/<N>, aliases/<alias>
///     .mlv/cache/stat/       stat caches (derived; safe to delete)
///     .mlv/lock              flock: shared by writers, exclusive by gc
public final class Repository: @unchecked Sendable {
    /// The on-disk format this mlv writes and reads.
    public static let formatVersion = 1
    public static let storeDirectoryName = ".mlv"

    /// The directory that contains `.mlv`.
    public let root: String
    /// `root/.mlv`.
    public let storePath: String
    public private(set) var config: RepositoryConfig
    public let objects: PackStore
    public let refs: RefStore

    /// Registry event time in seconds since the epoch instead of the clock; for tests of
    /// point-in-time queries (set through `@testable import`).
    var clockOverride: Int64?

    /// Remotes by URL that `openRemote` returns instead of connecting (tests: an
    /// in-memory remote behind a configured name).
    let remoteOverrides = Locked<[String: any Remote]>([:])
    /// Chains being rewritten in one step (`pull --rebase-registry`): head path (relative
    /// to `refs/`) -> the newest event staged so far. `appendEvent` builds on it and moves
    /// it instead of the head, whose lock the rewriter holds.
    let stagedChains = Locked<[String: ObjectID]>([:])

    /// A push builds pack files of at most this many bytes (64 MiB; tests set less).
    var pushPackBytes = 64 << 20

    var packsPath: String { storePath + "/packs" }
    var cachePath: String { storePath + "/cache" }
    var lockPath: String { storePath + "/lock" }

    private init(root: String, config: RepositoryConfig, tolerateDamage: Bool = false) throws {
        self.root = root
        storePath = root + "/" + Self.storeDirectoryName
        self.config = config
        objects = try wrap { try PackStore(directory: root + "/.mlv/packs", tolerateDamage: tolerateDamage) }
        refs = RefStore(root: root + "/.mlv/refs")
    }

    /// Creates a store in `directory`.
    /// - Throws: `MLVError.alreadyInitialized` when one is there; `.store(.io)` on write failure.
    @discardableResult
    public static func initialize(at directory: String, chunker: ChunkerParameters = .default) throws -> Repository {
        let root = FS.absolute(directory)
        let store = root + "/" + storeDirectoryName
        if FS.exists(store) { throw MLVError.alreadyInitialized(path: store) }
        try wrap { try chunker.validate() }
        let config = RepositoryConfig(format: formatVersion, chunker: chunker, identity: nil, alignTensors: true)
        try wrap {
            // Build the store beside its final name and rename it in, so a crash never
            // leaves a half-made .mlv that looks like a store.
            let staging = root + "/.mlv.init-\(getpid())"
            try FS.removeTree(staging)
            for sub in ["packs", "refs", "cache/stat", "tmp"] {
                try FS.makeDirectories(staging + "/" + sub)
            }
            try FS.atomicWrite(staging + "/config", config.encoded())
            try FS.rename(staging, store)
            try FS.fsyncDirectory(root)
        }
        return try Repository(root: root, config: config)
    }

    /// Opens the store in `directory` or the nearest parent that has one.
    /// - Parameter tolerateDamage: open even when pack indexes fail their checks (they
    ///   are skipped and listed by `objects.damagedIndexes`); for `repair` only.
    /// - Throws: `MLVError.notARepository`, `.store(.newerFormat)`, or a damaged config.
    public static func open(searchingFrom directory: String = FS.currentDirectory(),
                            tolerateDamage: Bool = false) throws -> Repository {
        var dir = FS.absolute(directory)
        while true {
            let candidate = dir + "/" + storeDirectoryName
            if FS.isDirectory(candidate) {
                let configPath = candidate + "/config"
                let bytes = try wrap { try FS.readFile(configPath) }
                let config = try RepositoryConfig.decode(bytes, path: configPath)
                return try Repository(root: dir, config: config, tolerateDamage: tolerateDamage)
            }
            if dir == "/" { throw MLVError.notARepository(searchedFrom: FS.absolute(directory)) }
            dir = FS.parent(of: dir)
        }
    }

    /// Who is acting: `MLV_IDENTITY`, else the configured identity, else `user@host`.
    public var identity: String {
        if let env = getenv("MLV_IDENTITY"), let s = String(validatingCString: env), !s.isEmpty { return s }
        if let id = config.identity, !id.isEmpty { return id }
        let user = getenv("USER").flatMap { String(validatingCString: $0) }
            ?? getpwuid(getuid()).flatMap { String(validatingCString: $0.pointee.pw_name) } ?? "uid\(getuid())"
        return "\(user)@\(hostName())"
    }

    /// Sets the configured identity (nil unsets it).
    /// - Throws: `MLVError.invalidArgument` for an identity of only spaces.
    public func setIdentity(_ identity: String?) throws {
        if let identity { _ = try actingIdentity(identity) }
        var c = config
        c.identity = identity
        try wrap { try FS.atomicWrite(storePath + "/config", c.encoded()) }
        config = c
    }

    /// "Now" as the file system stamps it: the mtime of a file created in the store.
    /// File times come from the kernel's coarse clock, which can lag the precise one by
    /// a tick; comparing like with like keeps the racy-clean guard sound. Falls back to
    /// the precise clock minus 50 ms when the store cannot be written.
    func fileSystemNow() -> Int64 {
        let probe = storePath + "/tmp/.clock-\(getpid())-\(wallClockNanoseconds())"
        defer { try? FS.unlink(probe) }
        if let fd = try? FS.open(probe, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600) {
            var st = stat()
            let ok = fstat(fd, &st) == 0
            FS.close(fd)
            if ok { return Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec) }
        }
        return wallClockNanoseconds() - 50_000_000
    }

    /// Takes the store's writer lock: shared for commands that only add, exclusive for gc.
    ///
    /// The list of packs is read again once the lock is held: the one read when the store
    /// was opened may predate a gc that ran while this process waited for the lock, and a
    /// writer that trusted it would skip storing objects that gc has since deleted (its
    /// dedup check would find them in a pack that is gone) and commit a version whose
    /// objects are missing.
    /// - Throws: `.store(.io)` when the lock or the pack directory cannot be read.
    func lock(_ mode: FileLock.Mode) throws -> FileLock {
        let held = try wrap { try FileLock(lockPath, mode: mode) }
        try wrap { try objects.reload() }
        return held
    }

    // MARK: reading objects

    /// Reads and parses a manifest.
    func manifestJSON(_ id: ObjectID) throws -> JSON {
        let (kind, bytes) = try wrap { try objects.read(id) }
        guard kind == .manifest else { throw MLVError.damaged("object \(id.short) is a \(kind), not a manifest") }
        return try wrap { try JSON.parse(bytes) }
    }

    public func datasetManifest(_ id: ObjectID) throws -> DatasetManifest {
        let json = try manifestJSON(id)
        return try wrap { try DatasetManifest(json: json) }
    }

    /// Reads and validates a tree.
    public func tree(_ id: ObjectID) throws -> Tree {
        let (kind, bytes) = try wrap { try objects.read(id) }
        guard kind == .tree else { throw MLVError.damaged("object \(id.short) is a \(kind), not a tree") }
        do { return try Tree.decode(bytes) }
        catch let e as ModelError { throw MLVError.damaged("tree \(id.short): \(e.message)") }
        catch { throw MLVError.damaged("tree \(id.short): \(error)") }
    }
}

/// `.mlv/config`: canonical JSON with the format version and settings that must never
/// change silently.
public struct RepositoryConfig: Sendable, Equatable {
    public var format: Int
    public var chunker: ChunkerParameters
    public var identity: String?
    /// Whether the chunker also cuts at the tensor boundaries of model files it
    /// recognises (safetensors). On for stores made by this mlv; absent (off) in stores
    /// made before it, whose chunks it would not change anyway: only deduplication
    /// depends on it, never an id.
    public var alignTensors: Bool = false

    public func encoded() -> [UInt8] {
        var o: [String: JSON] = [
            "format": .int(Int64(format)),
            "chunker": .object(["min": .int(Int64(chunker.min)), "avg": .int(Int64(chunker.avg)), "max": .int(Int64(chunker.max))]),
        ]
        if alignTensors { o["align"] = .array([.string("safetensors")]) }
        if let identity { o["identity"] = .string(identity) }
        return JSON.object(o).canonicalBytes() + [10]
    }

    /// - Throws: `MLVError.store(.newerFormat)` for a store from a newer mlv, `.damaged` otherwise.
    static func decode(_ bytes: [UInt8], path: String) throws -> RepositoryConfig {
        guard let json = try? JSON.parse(bytes), let format = json["format"]?.int else {
            throw MLVError.damaged("'\(path)' is not a valid mlv config")
        }
        if format > Int64(Repository.formatVersion) {
            throw MLVError.store(.newerFormat(path: path, found: Int(format), supported: Repository.formatVersion))
        }
        guard format >= 1, let c = json["chunker"], let mn = c["min"]?.int, let av = c["avg"]?.int, let mx = c["max"]?.int else {
            throw MLVError.damaged("'\(path)' is missing the chunker settings")
        }
        let chunker = ChunkerParameters(min: Int(mn), avg: Int(av), max: Int(mx))
        do { try chunker.validate() } catch { throw MLVError.damaged("'\(path)': \(error)") }
        var align = false
        if let a = json["align"] {
            guard let list = a.array?.compactMap(\.string), list.count == a.array?.count else {
                throw MLVError.damaged("'\(path)': 'align' is not a list of file formats")
            }
            for f in list where f != "safetensors" {
                throw MLVError.damaged("'\(path)': chunk alignment for '\(f)' is unknown to this mlv; upgrade mlv")
            }
            align = list.contains("safetensors")
        }
        return RepositoryConfig(format: Int(format), chunker: chunker, identity: json["identity"]?.string, alignTensors: align)
    }
}
