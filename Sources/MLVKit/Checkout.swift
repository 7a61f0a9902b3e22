import MLVBasics
import MLVModel
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// A file or link of a version, flattened to its path.
public struct FileEntry: Sendable, Equatable {
    public var path: String
    public var kind: Tree.Kind
    public var mode: UInt32
    public var size: Int64
    public var id: ObjectID?
    public var target: String?
}

public struct CheckoutResult: Sendable {
    public var files: Int
    public var bytes: Int64
    public var target: String
}

extension Repository {
    /// Every file and symlink under `tree`, with paths relative to it, sorted by path.
    public func flatten(_ tree: ObjectID, prefix: String = "") throws -> [FileEntry] {
        var out: [FileEntry] = []
        func walk(_ id: ObjectID, _ prefix: String) throws {
            for e in try self.tree(id).entries {
                let path = prefix.isEmpty ? e.name : prefix + "/" + e.name
                if e.kind == .dir {
                    try walk(e.id!, path)
                } else {
                    out.append(FileEntry(path: path, kind: e.kind, mode: e.mode, size: e.size, id: e.id, target: e.target))
                }
            }
        }
        try walk(tree, prefix)
        return out
    }

    /// Files of a version (optionally under a subpath).
    public func listFiles(_ ref: String, subpath: String? = nil) throws -> (Resolved, [FileEntry]) {
        let r = try resolve(ref)
        let id = try treeID(of: r, subpath: subpath)
        return (r, try flatten(id))
    }

    /// Streams a blob's bytes to `body`, verifying the whole against its id before the
    /// last call returns.
    /// - Throws: `MLVError.store(.missingObject/.corruptObject)` when a chunk is damaged.
    public func readBlob(_ blob: ObjectID, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let info = objects.info(blob) else { throw MLVError.store(.missingObject(blob)) }
        switch info.kind {
        case .chunk:
            let (_, bytes) = try wrap { try objects.read(blob) }
            try bytes.withUnsafeBytes { try body($0) }
        case .chunkList:
            let (_, listBytes) = try wrap { try objects.read(blob) }
            let chunks = try ChunkList.decode(listBytes, blob: blob)
            var hasher = SHA256()
            for c in chunks {
                // The whole blob's SHA-256 below verifies every chunk at once.
                let (kind, bytes) = try wrap { try objects.readUnverified(c.id) }
                guard kind == .chunk, bytes.count == c.length else {
                    throw MLVError.store(.corruptObject(c.id, pack: objects.directory, reason: "chunk of blob \(blob.short) has the wrong kind or length"))
                }
                hasher.update(bytes)
                try bytes.withUnsafeBytes { try body($0) }
            }
            let actual = hasher.finalize()
            guard actual == blob else {
                // Name the damaged chunk when there is one.
                for c in chunks { _ = try wrap { try objects.read(c.id) } }
                throw MLVError.store(.corruptObject(blob, pack: objects.directory, reason: "reassembled content hashes to \(actual.short)"))
            }
        default:
            throw MLVError.damaged("object \(blob.short) is a \(info.kind), not a blob")
        }
    }

    /// Materialises a version (or a subpath of it) into `target`, verified.
    ///
    /// Everything is first written into a staging directory beside or inside the
    /// target and each blob is checked against its id; the target is touched only after
    /// all of it verified. Existing files that differ are conflicts unless `force`.
    /// Never writes through a symlink: staged files are created with O_EXCL|O_NOFOLLOW in
    /// directories mlv made, and parents in an existing target must be real directories.
    public func checkout(_ ref: String, subpath: String? = nil, to target: String, force: Bool = false,
                         progress: Progress? = nil) throws -> CheckoutResult {
        let r = try resolve(ref)
        return try checkoutTree(try treeID(of: r, subpath: subpath), to: target, force: force, progress: progress)
    }

    /// Materialises a tree (a version's, or a code snapshot's) into `target`, verified,
    /// as `checkout` does.
    func checkoutTree(_ tree: ObjectID, to target: String, force: Bool = false, progress: Progress? = nil) throws -> CheckoutResult {
        let entries = try flatten(tree)
        let directories = try directoryPaths(tree)
        for e in entries {
            if let p = PathRules.problem(withRelativePath: e.path) { throw MLVError.unsafePath(path: e.path, reason: p) }
        }
        let dest = FS.absolute(target)
        if dest == storePath || dest.hasPrefix(storePath + "/") { throw MLVError.insideStore(path: target) }
        let existing = try wrap { try FS.lstat(dest) }
        if let existing, (existing.st_mode & S_IFMT) != S_IFDIR {
            throw MLVError.invalidArgument("checkout target '\(target)' exists and is not a directory")
        }
        var targetIsEmpty = true
        if existing != nil { targetIsEmpty = try wrap { try FS.listDirectory(dest) }.isEmpty }

        // Conflicts: existing files at planned paths whose content differs, and anything
        // but a real directory where a directory goes (a symlink there would be written
        // through).
        if !targetIsEmpty {
            var conflicts: [String] = []
            for d in directories {
                if try parentHasSymlink(dest, d + "/x") { conflicts.append(d); continue }
            }
            for e in entries {
                let path = dest + "/" + e.path
                if try parentHasSymlink(dest, e.path) { conflicts.append(e.path); continue }
                guard let st = try wrap({ try FS.lstat(path) }) else { continue }
                let same: Bool
                switch e.kind {
                case .file:
                    same = (st.st_mode & S_IFMT) == S_IFREG && Int64(st.st_size) == e.size && (try? Self.hashFile(path)) == e.id
                case .symlink:
                    same = (st.st_mode & S_IFMT) == S_IFLNK && (try? FS.readLink(path)) == e.target
                case .dir:
                    same = true
                }
                if !same { conflicts.append(e.path) }
            }
            if !conflicts.isEmpty && !force { throw MLVError.checkoutConflict(target: target, paths: conflicts) }
        }

        let staging = targetIsEmpty
            ? FS.parent(of: dest) + "/." + FS.baseName(of: dest) + ".mlv-checkout-\(getpid())"
            : dest + "/.mlv-checkout-\(getpid())"
        if targetIsEmpty { try wrap { try FS.makeDirectories(FS.parent(of: dest)) } }
        try wrap { try FS.removeTree(staging) }
        try wrap { try FS.makeDirectories(staging) }
        let bytes = entries.reduce(Int64(0)) { $0 + ($1.kind == .file ? $1.size : 0) }
        do {
            // Directories first (empty ones are part of a version too), then the files.
            // One writer: creating files in parallel contends on the directory and the
            // file system's inode allocator and was slower on ext4.
            for d in directories { try wrap { try FS.makeDirectories(staging + "/" + d) } }
            try Parallel.forEach(entries.count, workers: 1) { i in
                let e = entries[i]
                let path = staging + "/" + e.path
                switch e.kind {
                case .file:
                    try writeFile(blob: e.id!, mode: e.mode, to: path)
                    progress?.advance(bytes: Int(e.size))
                case .symlink:
                    try wrap { try FS.symlink(target: e.target!, at: path) }
                case .dir:
                    break
                }
            }
        } catch {
            try? FS.removeTree(staging)
            throw error
        }

        if targetIsEmpty {
            if existing != nil { _ = rmdir(dest) }
            try wrap { try FS.rename(staging, dest) }
            try wrap { try FS.fsyncDirectory(FS.parent(of: dest)) }
        } else {
            for e in entries {
                let to = dest + "/" + e.path
                try wrap {
                    try makeRealDirectories(dest, FS.parent(of: e.path), force: force)
                    if let st = try FS.lstat(to), (st.st_mode & S_IFMT) == S_IFDIR { try FS.removeTree(to) }
                    try FS.rename(staging + "/" + e.path, to)
                }
            }
            for d in directories { try wrap { try makeRealDirectories(dest, d, force: force) } }
            try wrap { try FS.removeTree(staging) }
        }
        return CheckoutResult(files: entries.filter { $0.kind == .file }.count, bytes: bytes, target: dest)
    }

    private func writeFile(blob: ObjectID, mode: UInt32, to path: String) throws {
        // Permission bits only: setuid, setgid and sticky bits are never restored.
        let fd = try wrap { try FS.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: mode_t(mode & 0o777)) }
        defer { FS.close(fd) }
        try readBlob(blob) { bytes in try wrap { try FS.writeAll(fd, bytes, path: path) } }
        _ = fchmod(fd, mode_t(mode & 0o777))
    }

    /// Every directory path under `tree`, parents before children.
    private func directoryPaths(_ tree: ObjectID) throws -> [String] {
        var out: [String] = []
        func walk(_ id: ObjectID, _ rel: String) throws {
            for e in try self.tree(id).entries where e.kind == .dir {
                let path = rel.isEmpty ? e.name : rel + "/" + e.name
                if let p = PathRules.problem(withRelativePath: path) { throw MLVError.unsafePath(path: path, reason: p) }
                out.append(path)
                try walk(e.id!, path)
            }
        }
        try walk(tree, "")
        return out
    }

    /// True when some parent of `rel` inside `base` is a symlink or a non-directory.
    private func parentHasSymlink(_ base: String, _ rel: String) throws -> Bool {
        var path = base
        for part in rel.split(separator: "/").dropLast() {
            path += "/" + part
            guard let st = try wrap({ try FS.lstat(path) }) else { return false }
            if (st.st_mode & S_IFMT) != S_IFDIR { return true }
        }
        return false
    }

    /// Creates `rel`'s directories under `base`, replacing symlinks or files in the way
    /// (only reached with --force, after conflicts were reported).
    private func makeRealDirectories(_ base: String, _ rel: String, force: Bool) throws {
        var path = base
        for part in rel.split(separator: "/") where !rel.isEmpty && rel != "." {
            path += "/" + part
            if let st = try FS.lstat(path) {
                if (st.st_mode & S_IFMT) == S_IFDIR { continue }
                try FS.unlink(path)
            }
            try FS.makeDirectories(path)
        }
    }

    /// The blob id of a file on disk: the same hex `sha256sum` prints.
    /// - Throws: `MLVError.unreadable` or `.pathNotFound`.
    public static func hashFile(_ path: String) throws -> ObjectID {
        guard FS.exists(path) else { throw MLVError.pathNotFound(path) }
        do {
            let file = try MappedFile(path: path)
            return SHA256.hash(file.bytes)
        } catch let e as FileSystemError {
            throw MLVError.unreadable(path: path, cause: e)
        }
    }
}
