import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// A `Remote` in a directory, typically on a disk the team shares: key `a/b/c` is the
/// file `<root>/a/b/c`.
///
/// - Writes go to a temp file `.NAME.tmp-<random>` beside the target, are fsynced, then
///   `rename(2)`d (`put`, `upload`, `replace`) or `link(2)`ed (`create`, which fails when
///   the name exists) into place, and the directory is fsynced: an object appears only
///   complete. Names starting with `.` are never keys, so temp and lock files never list.
/// - `replace` and `delete` hold the lock file `.NAME.lock` (`O_CREAT|O_EXCL`) while they
///   check the entity tag and move the file, so two replaces of one key are serialised.
/// - Entity tag: the SHA-256 of the content for objects up to `hashedTagLimit` bytes
///   (refs and event heads, the objects that are replaced); for larger objects, written
///   once under content-derived names, the size, mtime in nanoseconds and inode of the
///   file, which change on every write because every write makes a new file.
/// - A key cannot be both an object and a directory of other keys (`a` and `a/b`); such a
///   write fails with the file system's error naming the path.
/// - Writes refuse to go through a symlinked directory a hostile writer planted in the
///   tree, and reads open the final file with `O_NOFOLLOW`.
public final class DirectoryRemote: Remote {
    /// The absolute path of the directory.
    public let root: String
    public var location: String { root }

    /// Objects up to this size have a content-hash entity tag.
    public static let hashedTagLimit = 1 << 20

    /// How long `replace` and `delete` wait for another writer's lock on the same key.
    public let lockTimeoutMilliseconds: Int

    /// A remote over the existing directory `path`.
    /// - Throws: `RemoteError.notFound` when `path` is not a directory.
    public init(path: String, lockTimeoutMilliseconds: Int = 10_000) throws {
        self.lockTimeoutMilliseconds = lockTimeoutMilliseconds
        root = FS.absolute(path)
        guard FS.isDirectory(root) else {
            throw RemoteError(.notFound, location: root, "no such directory")
        }
    }

    // MARK: reads

    public func get(_ key: String) throws -> RemoteObject? {
        let path = try file(key)
        return try guarded(key) {
            guard let fd = try openForReading(path) else { return nil }
            defer { FS.close(fd) }
            let st = try FS.fstat(fd, path: path)
            let bytes = try readAll(fd, size: Int(st.st_size), path: path)
            return RemoteObject(bytes: bytes, etag: Self.etag(st, content: bytes))
        }
    }

    public func getRange(_ key: String, offset: Int64, length: Int) throws -> [UInt8] {
        let path = try file(key)
        try RemoteRange.check(offset: offset, length: length, key: key, location: location)
        return try guarded(key) {
            guard let fd = try openForReading(path) else { throw notFound(key) }
            defer { FS.close(fd) }
            let size = Int64(try FS.fstat(fd, path: path).st_size)
            let count = Int(max(0, min(Int64(length), size - offset)))
            var bytes = [UInt8](repeating: 0, count: count)
            let n = try bytes.withUnsafeMutableBytes { try FS.pread(fd, into: $0, at: Int(offset), path: path) }
            return Array(bytes[0..<n])
        }
    }

    public func download(_ key: String, to target: String) throws -> Int64 {
        let path = try file(key)
        return try guarded(key) {
            guard let fd = try openForReading(path) else { throw notFound(key) }
            defer { FS.close(fd) }
            let out = try FS.open(target, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
            defer { FS.close(out) }
            return try FS.copy(from: fd, sourcePath: path, to: out, targetPath: target)
        }
    }

    public func head(_ key: String) throws -> RemoteEntry? {
        let path = try file(key)
        return try guarded(key) {
            guard let fd = try openForReading(path) else { return nil }
            defer { FS.close(fd) }
            let st = try FS.fstat(fd, path: path)
            return RemoteEntry(key: key, size: Int64(st.st_size), etag: try etag(fd, st, path: path))
        }
    }

    public func list(prefix: String) throws -> [RemoteEntry] {
        try RemoteKey.checkPrefix(prefix, location: location)
        // Start at the deepest directory the prefix names in full; filter the rest by name.
        let directoryPart = prefix.utf8.lastIndex(of: UInt8(ascii: "/")).map { String(prefix[...$0]) } ?? ""
        return try guarded(nil) {
            var entries: [RemoteEntry] = []
            try walk(directoryPart, prefix: prefix, into: &entries)
            return RemoteKey.sortedByBytes(entries)
        }
    }

    // MARK: writes

    public func put(_ key: String, _ bytes: [UInt8]) throws -> String {
        let path = try file(key)
        return try guarded(key) {
            let (tmp, etag) = try writeTemporary(for: path) { fd, tmp in try FS.writeAll(fd, bytes, path: tmp) }
            try moveIntoPlace(tmp, path)
            return etag
        }
    }

    public func upload(_ key: String, from source: String) throws -> String {
        let path = try file(key)
        return try guarded(key) {
            let input = try FS.open(source, O_RDONLY)
            defer { FS.close(input) }
            let (tmp, etag) = try writeTemporary(for: path) { fd, tmp in
                _ = try FS.copy(from: input, sourcePath: source, to: fd, targetPath: tmp)
            }
            try moveIntoPlace(tmp, path)
            return etag
        }
    }

    /// Streams the pieces into the temp file, file ranges copied inside the kernel
    /// (`sendfile(2)`), then fsyncs and renames it into place like `put`.
    public func put(_ key: String, pieces: [UploadPiece]) throws -> String {
        let path = try file(key)
        return try guarded(key) {
            let (tmp, etag) = try writeTemporary(for: path) { fd, tmp in try RemoteFile.write(pieces, to: fd, path: tmp) }
            try moveIntoPlace(tmp, path)
            return etag
        }
    }

    public func create(_ key: String, _ bytes: [UInt8]) throws -> String {
        let path = try file(key)
        return try guarded(key) {
            let (tmp, etag) = try writeTemporary(for: path) { fd, tmp in try FS.writeAll(fd, bytes, path: tmp) }
            defer { try? FS.unlink(tmp) }
            guard try FS.link(tmp, path) else {
                throw RemoteError(.preconditionFailed, location: location, key: key, "already exists")
            }
            try FS.fsyncDirectory(FS.parent(of: path))
            return etag
        }
    }

    public func replace(_ key: String, _ bytes: [UInt8], expected: String) throws -> String {
        let path = try file(key)
        return try guarded(key) {
            guard let lock = try lock(path, key: key) else {
                throw RemoteError(.preconditionFailed, location: location, key: key, "does not exist")
            }
            defer { lock.release() }
            guard let fd = try openForReading(path) else {
                throw RemoteError(.preconditionFailed, location: location, key: key, "does not exist")
            }
            let current: String
            do {
                defer { FS.close(fd) }
                current = try etag(fd, try FS.fstat(fd, path: path), path: path)
            }
            guard current == expected else {
                throw RemoteError(.preconditionFailed, location: location, key: key,
                                  "changed: entity tag is \(current), expected \(expected)")
            }
            let (tmp, etag) = try writeTemporary(for: path) { fd, tmp in try FS.writeAll(fd, bytes, path: tmp) }
            try moveIntoPlace(tmp, path)
            return etag
        }
    }

    public func delete(_ key: String) throws {
        let path = try file(key)
        try guarded(key) {
            guard let lock = try lock(path, key: key) else { return }
            defer { lock.release() }
            try FS.unlink(path)
            try FS.fsyncDirectory(FS.parent(of: path))
        }
    }

    // MARK: entity tags

    /// The tag of the open file `fd` with status `st`: its content hash when small.
    private func etag(_ fd: Int32, _ st: stat, path: String) throws -> String {
        if Int(st.st_size) <= Self.hashedTagLimit {
            return Self.etag(st, content: try readAll(fd, size: Int(st.st_size), path: path))
        }
        return Self.etag(st, content: nil)
    }

    /// `"<sha256 hex>"` when `content` is given and small, else `"s<size>-m<mtime ns>-i<inode>"`.
    private static func etag(_ st: stat, content: [UInt8]?) -> String {
        if let content, content.count <= hashedTagLimit {
            return "\"" + SHA256.hash(content).hex + "\""
        }
        let mtime = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        return "\"s\(st.st_size)-m\(mtime)-i\(st.st_ino)\""
    }

    // MARK: files

    /// The path of `key`, after checking the key rules.
    private func file(_ key: String) throws -> String {
        try RemoteKey.check(key, location: location)
        return root + "/" + key
    }

    /// Opens an object for reading without following a symlink in its last component;
    /// nil when it does not exist.
    private func openForReading(_ path: String) throws -> Int32? {
        do {
            let fd = try FS.open(path, O_RDONLY | O_NOFOLLOW)
            let st: stat
            do { st = try FS.fstat(fd, path: path) } catch { FS.close(fd); throw error }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                FS.close(fd)
                throw RemoteError(.failed, location: location, key: String(path.dropFirst(root.count + 1)),
                                  "not a regular file: '\(path)'")
            }
            return fd
        } catch let e as FileSystemError where e.isNotFound {
            return nil
        } catch let e as FileSystemError where e.errno == ELOOP {
            throw RemoteError(.failed, location: location, key: String(path.dropFirst(root.count + 1)),
                              "'\(path)' is a symlink; a directory remote holds only regular files")
        }
    }

    private func readAll(_ fd: Int32, size: Int, path: String) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        let n = try bytes.withUnsafeMutableBytes { try FS.pread(fd, into: $0, at: 0, path: path) }
        return n == size ? bytes : Array(bytes[0..<n])
    }

    /// Makes the directories of `path` below the root, refusing any that is a symlink.
    private func makeParents(of path: String) throws {
        var directory = root
        let relative = path.dropFirst(root.count + 1)
        let parts = relative.split(separator: "/")
        for part in parts.dropLast() {
            directory += "/" + part
            if let st = try FS.lstat(directory) {
                if (st.st_mode & S_IFMT) != S_IFDIR {
                    throw RemoteError(.failed, location: location, key: String(relative),
                                      "'\(directory)' is not a directory (a symlink or an object)")
                }
            } else {
                try FS.makeDirectories(directory)
            }
        }
    }

    /// Writes a new temp file beside `path` through `body`, fsyncs it, and returns its
    /// name and the entity tag it will have under its final name.
    private func writeTemporary(for path: String, _ body: (Int32, String) throws -> Void) throws -> (String, String) {
        try makeParents(of: path)
        var random = SystemRandomNumberGenerator()
        let tmp = FS.parent(of: path) + "/." + FS.baseName(of: path) + ".tmp-" + String(random.next() as UInt64, radix: 16)
        let fd = try FS.open(tmp, O_RDWR | O_CREAT | O_EXCL, mode: 0o644)
        do {
            defer { FS.close(fd) }
            try body(fd, tmp)
            try FS.fsync(fd, path: tmp)
            let st = try FS.fstat(fd, path: tmp)
            return (tmp, try etag(fd, st, path: tmp))
        } catch {
            try? FS.unlink(tmp)
            throw error
        }
    }

    /// Renames a written temp file over `path` and fsyncs the directory.
    private func moveIntoPlace(_ tmp: String, _ path: String) throws {
        do {
            try FS.rename(tmp, path)
        } catch {
            try? FS.unlink(tmp)
            throw error
        }
        try FS.fsyncDirectory(FS.parent(of: path))
    }

    /// Takes `.NAME.lock` beside `path`; nil when the object's directory does not exist
    /// (so neither does the object).
    private func lock(_ path: String, key: String) throws -> LockFile? {
        let lockPath = FS.parent(of: path) + "/." + FS.baseName(of: path) + ".lock"
        do {
            return try LockFile.acquire(lockPath, timeoutMilliseconds: lockTimeoutMilliseconds)
        } catch LockFile.Failure.system(let e) where e.isNotFound {
            return nil
        } catch let failure as LockFile.Failure {
            throw RemoteError(.failed, location: location, key: key,
                              "\(failure); remove it if that process is gone")
        }
    }

    /// Adds every object under `directory` (relative, ending in `/` or empty) whose key
    /// starts with `prefix`.
    private func walk(_ directory: String, prefix: String, into entries: inout [RemoteEntry]) throws {
        let path = directory.isEmpty ? root : root + "/" + directory.dropLast()
        let children: [(name: String, stat: stat)]
        do {
            children = try FS.listDirectoryWithStats(path)
        } catch let e as FileSystemError where e.isNotFound {
            return
        }
        for (name, st) in children where !name.hasPrefix(".") {
            let key = directory + name
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                let sub = key + "/"
                // Descend only where some key below could still start with the prefix.
                if sub.utf8.starts(with: prefix.utf8) || prefix.utf8.starts(with: sub.utf8) {
                    try walk(sub, prefix: prefix, into: &entries)
                }
            case S_IFREG where key.utf8.starts(with: prefix.utf8) && RemoteKey.problem(key) == nil:
                let file = root + "/" + key
                guard let fd = try openForReading(file) else { continue }  // deleted meanwhile
                defer { FS.close(fd) }
                let now = try FS.fstat(fd, path: file)
                entries.append(RemoteEntry(key: key, size: Int64(now.st_size), etag: try etag(fd, now, path: file)))
            default:
                continue  // symlinks and anything else a hostile writer planted are not objects
            }
        }
    }

    // MARK: errors

    private func notFound(_ key: String) -> RemoteError {
        RemoteError(.notFound, location: location, key: key, "no such object")
    }

    /// Runs `body`, turning a `FileSystemError` into a `RemoteError` naming the key.
    private func guarded<T>(_ key: String?, _ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw RemoteFile.wrap(error, key: key, location: location) }
    }
}
