import MLVBasics
import MLVKit
import MLVModel
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// What to put at one path of a scenario: a file (bytes and permission bits), a
/// directory, a symlink (never followed), or a named pipe (in a snapshot: any special
/// file).
///
/// A string literal is a text file: `["a.txt": "hello\n", "sub/": .directory]`.
public enum ScenarioEntry: Sendable, Equatable, ExpressibleByStringLiteral {
    case file([UInt8], mode: UInt32)
    case directory
    case symlink(String)
    case fifo

    public init(stringLiteral value: String) {
        self = .file(Array(value.utf8), mode: 0o644)
    }

    /// A text file.
    public static func text(_ text: String, mode: UInt32 = 0o644) -> ScenarioEntry {
        .file(Array(text.utf8), mode: mode)
    }

    /// `count` bytes of SplitMix64 output from `seed`: incompressible, reproducible.
    public static func random(seed: UInt64, count: Int, mode: UInt32 = 0o644) -> ScenarioEntry {
        .file(splitmix64Bytes(seed: seed, count: count), mode: mode)
    }

    /// The file's bytes, or nil for other kinds.
    public var bytes: [UInt8]? {
        if case .file(let b, _) = self { return b }
        return nil
    }
}

/// Helpers that build and inspect file trees for tests; every call goes straight to
/// libc, never through `FS`, so a fault injector cannot interfere with set-up or checks.
public enum Scenario {
    /// Creates `<tmp>/<prefix>.XXXXXX` with `mkdtemp(3)` and returns its real path.
    public static func makeDirectory(prefix: String, inMemory: Bool = false) throws -> String {
        let path = try TemporaryDirectory.make(prefix: prefix, inMemory: inMemory)
        return (try? FS.realPath(path)) ?? path
    }

    /// Removes `path` and everything below it, first giving directories owner rwx so a
    /// test that chmod-ed something to 000 still cleans up.
    public static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            _ = chmod(path, 0o700)
            for name in (try? names(in: path)) ?? [] {
                removeTree(path + "/" + name)
            }
            _ = rmdir(path)
        } else {
            _ = unlink(path)
        }
    }

    /// Entry names in a directory (without `.` and `..`), sorted by bytes.
    public static func names(in directory: String) throws -> [String] {
        try FS.listDirectory(directory).map(\.name).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Writes `entry` at `path`, creating missing parent directories. An existing file
    /// is replaced (same inode when it was a regular file); a trailing `/` in the path
    /// means a directory.
    public static func write(_ entry: ScenarioEntry, at path: String) throws {
        try makeDirectories(parent(path))
        switch entry {
        case .file(let bytes, let mode):
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw FileSystemError(call: "open", path: path, errno: errno) }
            defer { close(fd) }
            try FS.writeAll(fd, bytes, path: path)
            guard fchmod(fd, mode_t(mode)) == 0 else { throw FileSystemError(call: "fchmod", path: path, errno: errno) }
        case .directory:
            try makeDirectories(path)
        case .symlink(let target):
            guard symlink(target, path) == 0 else { throw FileSystemError(call: "symlink", path: path, errno: errno) }
        case .fifo:
            guard mkfifo(path, 0o644) == 0 else { throw FileSystemError(call: "mkfifo", path: path, errno: errno) }
        }
    }

    /// Writes every entry under `directory`, in order. Keys are relative paths.
    public static func write(_ entries: KeyValuePairs<String, ScenarioEntry>, under directory: String) throws {
        try makeDirectories(directory)
        for (relative, entry) in entries {
            var rel = relative
            while rel.hasSuffix("/") { rel.removeLast() }
            try write(entry, at: directory + "/" + rel)
        }
    }

    /// `mkdir -p`.
    public static func makeDirectories(_ path: String) throws {
        var st = stat()
        if lstat(path, &st) == 0 { return }
        let up = parent(path)
        if up != path && !up.isEmpty { try makeDirectories(up) }
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw FileSystemError(call: "mkdir", path: path, errno: errno)
        }
    }

    /// A file's bytes.
    public static func read(_ path: String) throws -> [UInt8] {
        try FS.readFile(path)
    }

    /// Sets a path's modification time (not following a symlink), leaving its content.
    public static func setModificationTime(_ path: String, seconds: Int64, nanoseconds: Int = 0) throws {
        var times = [timespec(tv_sec: time_t(seconds), tv_nsec: nanoseconds),
                     timespec(tv_sec: time_t(seconds), tv_nsec: nanoseconds)]
        guard utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw FileSystemError(call: "utimensat", path: path, errno: errno)
        }
    }

    /// `lstat(2)`, or nil when nothing is there.
    public static func lstatOrNil(_ path: String) -> stat? {
        var st = stat()
        return lstat(path, &st) == 0 ? st : nil
    }

    /// Everything under `directory` by relative path: files with bytes and permission
    /// bits, directories, symlinks with targets; nil when `directory` does not exist.
    /// Use it to compare a checkout with its source or to prove a directory untouched.
    public static func snapshot(_ directory: String) throws -> [String: ScenarioEntry]? {
        guard lstatOrNil(directory) != nil else { return nil }
        var out: [String: ScenarioEntry] = [:]
        func walk(_ path: String, _ rel: String) throws {
            for name in try names(in: path) {
                let child = path + "/" + name
                let childRel = rel.isEmpty ? name : rel + "/" + name
                guard let st = lstatOrNil(child) else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFREG:
                    out[childRel] = .file(try read(child), mode: UInt32(st.st_mode & 0o7777))
                case S_IFDIR:
                    out[childRel] = .directory
                    try walk(child, childRel)
                case S_IFLNK:
                    out[childRel] = .symlink(try FS.readLink(child))
                default:
                    out[childRel] = .fifo
                }
            }
        }
        try walk(directory, "")
        return out
    }

    static func parent(_ path: String) -> String {
        FS.parent(of: path)
    }
}

/// A repository in a fresh temporary directory, with helpers to write data into it
/// and add it; the directory is removed when the value goes away.
///
///     let t = try TestRepository()
///     try t.write("data", ["a.csv": "x,y\n", "train/b.bin": .random(seed: 1, count: 4096)])
///     let v1 = try t.add("mnist", "data")
public final class TestRepository: @unchecked Sendable {
    /// The temporary directory; also the repository root (it holds `.mlv`).
    public let directory: String
    public let repository: Repository

    /// Creates a temporary directory and initialises a store in it.
    public init(chunker: ChunkerParameters = .default, prefix: String = "mlv-kit") throws {
        directory = try Scenario.makeDirectory(prefix: prefix)
        do {
            repository = try Repository.initialize(at: directory, chunker: chunker)
        } catch {
            Scenario.removeTree(directory)
            throw error
        }
    }

    deinit {
        Scenario.removeTree(directory)
    }

    /// `directory` joined with a relative path.
    public func path(_ relative: String) -> String {
        relative.isEmpty ? directory : directory + "/" + relative
    }

    /// Writes `entries` under `relative` (created if missing).
    public func write(_ relative: String, _ entries: KeyValuePairs<String, ScenarioEntry>) throws {
        try Scenario.write(entries, under: path(relative))
    }

    /// Writes one entry at `relative`.
    public func write(_ relative: String, _ entry: ScenarioEntry) throws {
        try Scenario.write(entry, at: path(relative))
    }

    /// Removes a file or tree.
    public func remove(_ relative: String) {
        Scenario.removeTree(path(relative))
    }

    public func read(_ relative: String) throws -> [UInt8] {
        try Scenario.read(path(relative))
    }

    /// Snapshot of a directory relative to the temporary directory.
    public func snapshot(_ relative: String) throws -> [String: ScenarioEntry]? {
        try Scenario.snapshot(path(relative))
    }

    /// Adds `relative` as the next version of dataset `name`.
    @discardableResult
    public func add(_ name: String, _ relative: String, on repository: Repository? = nil,
                    _ configure: (inout AddDatasetRequest) -> Void = { _ in }) throws -> AddDatasetResult {
        var request = AddDatasetRequest(name: name, path: path(relative))
        configure(&request)
        return try (repository ?? self.repository).addDataset(request)
    }

    /// A second handle on the same store, as another process would open it.
    public func reopen() throws -> Repository {
        try Repository.open(searchingFrom: directory)
    }

    /// Every ref file and the pack names: what "nothing new was recorded" compares.
    public func recorded() throws -> RecordedState {
        let refs = try repository.refs.allRefs().map { ref -> String in
            switch ref.id {
            case .success(let id): return ref.path + " " + id.hex
            case .failure(let e): return ref.path + " " + e.description
            }
        }
        return RecordedState(refs: refs, packs: try repository.objects.packNames())
    }

    /// The pack files (`.pack`) of the store, by path.
    public func packFiles() throws -> [String] {
        try Scenario.names(in: repository.storePath + "/packs").filter { $0.hasSuffix(".pack") }
            .map { repository.storePath + "/packs/" + $0 }
    }
}

/// The refs and pack indexes of a store at one moment.
public struct RecordedState: Sendable, Equatable {
    public var refs: [String]
    public var packs: [String]
}

/// Rewrites bytes of a file in place (pack files are read-only, so the mode is lifted
/// for the write and put back).
public func patchFile(_ path: String, at offset: Int, _ transform: (UInt8) -> UInt8) throws {
    var st = stat()
    guard lstat(path, &st) == 0 else { throw FileSystemError(call: "lstat", path: path, errno: errno) }
    _ = chmod(path, 0o644)
    defer { _ = chmod(path, st.st_mode & 0o7777) }
    let fd = open(path, O_RDWR | O_CLOEXEC)
    guard fd >= 0 else { throw FileSystemError(call: "open", path: path, errno: errno) }
    defer { close(fd) }
    var byte: UInt8 = 0
    guard pread(fd, &byte, 1, off_t(offset)) == 1 else { throw FileSystemError(call: "pread", path: path, errno: errno) }
    byte = transform(byte)
    guard pwrite(fd, &byte, 1, off_t(offset)) == 1 else { throw FileSystemError(call: "pwrite", path: path, errno: errno) }
}

/// Cuts a file to `length` bytes (lifting a read-only mode for the call).
public func truncateFile(_ path: String, to length: Int) throws {
    var st = stat()
    guard lstat(path, &st) == 0 else { throw FileSystemError(call: "lstat", path: path, errno: errno) }
    _ = chmod(path, 0o644)
    defer { _ = chmod(path, st.st_mode & 0o7777) }
    guard truncate(path, off_t(length)) == 0 else { throw FileSystemError(call: "truncate", path: path, errno: errno) }
}
