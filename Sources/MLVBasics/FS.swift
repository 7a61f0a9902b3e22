import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one layer through which mlv touches the file system.
///
/// Each function names the C call it wraps and throws `FileSystemError` carrying the
/// path and errno. Writes that must survive a crash use `atomicWrite` (temp file,
/// fsync, rename, fsync of the directory) or `createExclusive` (temp file, fsync,
/// `link`, which never replaces an existing file).
public enum FS {
    // MARK: descriptors

    /// `open(2)`.
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws -> Int32 {
        try FaultInjection.check(.open, path)
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno == EINTR { continue }
            throw FileSystemError(call: "open", path: path, errno: errno)
        }
    }

    /// `close(2)`. A descriptor that was not open (EBADF) is counted in `unopenCloses`.
    public static func close(_ fd: Int32) {
        if Glibc.close(fd) != 0 && errno == EBADF { unopenCloseCount.add(1) }
    }

    /// How many `close` calls so far found their descriptor not open: each is a
    /// descriptor closed a second time (or never opened), which in a multi-threaded
    /// process closes whatever another thread opened under that number meanwhile when
    /// the number was reused. Tests check that a path they drive leaves it unchanged.
    public static var unopenCloses: Int { unopenCloseCount.current }
    private static let unopenCloseCount = AtomicCounter()

    /// Writes all of `bytes` to `fd` (`write(2)`, retried on short writes and EINTR).
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        try FaultInjection.check(.write, path)
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileSystemError(call: "write", path: path, errno: errno)
            }
            offset += n
        }
    }

    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        try bytes.withUnsafeBytes { raw in try writeAll(fd, raw, path: path) }
    }

    /// Reads up to `buffer.count` bytes at `offset` (`pread(2)`); returns the count read.
    public static func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int, path: String) throws -> Int {
        try FaultInjection.check(.read, path)
        var done = 0
        while done < buffer.count {
            let n = Glibc.pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw FileSystemError(call: "pread", path: path, errno: errno)
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// `O_DIRECT`, which Glibc's Swift module hides behind `_GNU_SOURCE`; its value
    /// differs between architectures.
    private static let directFlag: Int32 = {
        #if arch(x86_64) || arch(i386)
        return 0o40000
        #elseif arch(arm64) || arch(arm)
        return 0o200000
        #else
        return 0
        #endif
    }()

    /// Turns `O_DIRECT` on or off for `fd` (`fcntl(F_SETFL)`); false when the file
    /// system or platform refuses it.
    @discardableResult
    public static func setDirectIO(_ fd: Int32, _ on: Bool) -> Bool {
        guard directFlag != 0 else { return false }
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return false }
        return fcntl(fd, F_SETFL, on ? flags | directFlag : flags & ~directFlag) == 0
    }

    /// `fstat(2)`.
    public static func fstat(_ fd: Int32, path: String) throws -> Glibc.stat {
        var st = Glibc.stat()
        guard Glibc.fstat(fd, &st) == 0 else { throw FileSystemError(call: "fstat", path: path, errno: errno) }
        return st
    }

    /// Copies everything from `source` (read with `pread(2)` from offset 0) to the end of
    /// `target`, `bufferSize` bytes at a time, so a file of any size streams through a
    /// fixed buffer. Returns the number of bytes copied.
    public static func copy(from source: Int32, sourcePath: String, to target: Int32, targetPath: String,
                            bufferSize: Int = 1 << 20) throws -> Int64 {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        var total = 0
        while true {
            let n = try pread(source, into: buffer, at: total, path: sourcePath)
            if n == 0 { return Int64(total) }
            try writeAll(target, UnsafeRawBufferPointer(rebasing: buffer[0..<n]), path: targetPath)
            total += n
        }
    }

    /// Appends `length` bytes of `source` starting at `offset` to `target` inside the
    /// kernel (`sendfile(2)`: no copy through user space), falling back to `pread(2)` and
    /// `write(2)` where the kernel cannot. Returns the number of bytes copied, fewer only
    /// when `source` ends first.
    /// - Throws: `FileSystemError` naming the path whose call failed.
    public static func copyRange(from source: Int32, sourcePath: String, offset: Int, length: Int,
                                 to target: Int32, targetPath: String) throws -> Int {
        try FaultInjection.check(.read, sourcePath)
        try FaultInjection.check(.write, targetPath)
        var position = off_t(offset)
        var done = 0
        while done < length {
            let n = Glibc.sendfile(target, source, &position, min(length - done, 1 << 30))
            if n > 0 { done += n; continue }
            if n == 0 { return done }
            if errno == EINTR { continue }
            guard errno == EINVAL || errno == ENOSYS else {
                throw FileSystemError(call: "sendfile", path: targetPath, errno: errno)
            }
            // No in-kernel copy between these two files: stream through a buffer.
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while done < length {
                let want = min(buffer.count, length - done)
                let got = try pread(source, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]), at: offset + done, path: sourcePath)
                if got == 0 { return done }
                try writeAll(target, UnsafeRawBufferPointer(rebasing: buffer[0..<got]), path: targetPath)
                done += got
            }
        }
        return done
    }

    /// `fsync(2)`.
    public static func fsync(_ fd: Int32, path: String) throws {
        try FaultInjection.check(.fsync, path)
        if Glibc.fsync(fd) != 0 {
            throw FileSystemError(call: "fsync", path: path, errno: errno)
        }
    }

    /// Opens a directory and `fsync(2)`s it so a rename or link in it is durable.
    public static func fsyncDirectory(_ path: String) throws {
        try FaultInjection.check(.fsyncDirectory, path)
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw FileSystemError(call: "open", path: path, errno: errno) }
        defer { Glibc.close(fd) }
        if Glibc.fsync(fd) != 0 {
            throw FileSystemError(call: "fsync", path: path, errno: errno)
        }
    }

    // MARK: whole files

    /// Reads a whole file (`open`, `fstat`, `read`).
    public static func readFile(_ path: String) throws -> [UInt8] {
        let fd = try open(path, O_RDONLY)
        defer { close(fd) }
        var st = Glibc.stat()
        guard Glibc.fstat(fd, &st) == 0 else { throw FileSystemError(call: "fstat", path: path, errno: errno) }
        var result = [UInt8]()
        var capacity = max(Int(st.st_size), 0)
        var count = 0
        while true {
            if count == capacity { capacity = max(capacity * 2, 4096) }
            result.reserveCapacity(capacity)
            var chunk = [UInt8](repeating: 0, count: capacity - count)
            let n = try chunk.withUnsafeMutableBytes { buf in
                try pread(fd, into: buf, at: count, path: path)
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
            count += n
            if n < chunk.count { break }
        }
        return result
    }

    /// Reads a small file whole (`open`, `read` until end of file or `limit + 1` bytes,
    /// `close`; no `fstat`, no error value made for a missing file): nil when it does not
    /// exist. A file longer than `limit` comes back cut at `limit + 1` bytes, so it never
    /// equals content of at most `limit` bytes.
    /// - Throws: `FileSystemError` for any other failure.
    public static func readSmallFile(_ path: String, limit: Int) throws -> [UInt8]? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw FileSystemError(call: "open", path: path, errno: errno)
        }
        defer { close(fd) }
        var out = [UInt8](repeating: 0, count: limit + 1)
        var count = 0
        while count < out.count {
            let n = out.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileSystemError(call: "read", path: path, errno: errno)
            }
            if n == 0 { break }
            count += n
        }
        out.removeLast(out.count - count)
        return out
    }

    /// Reads a whole file, or nil when it does not exist.
    public static func readFileIfExists(_ path: String) throws -> [UInt8]? {
        do { return try readFile(path) } catch let e as FileSystemError where e.isNotFound { return nil }
    }

    /// Replaces `path` with `bytes` so readers see the old or the new file, never a mix:
    /// write a temp file beside it, fsync, rename, fsync the directory.
    /// `crashPoints` are hit just before and after the rename (see `CrashPoint`).
    public static func atomicWrite(_ path: String, _ bytes: [UInt8], durable: Bool = true,
                                   crashPoints: PublishCrashPoints? = nil) throws {
        let tmp = temporaryName(for: path)
        let fd = try open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
        do {
            try writeAll(fd, bytes, path: tmp)
            if durable { try fsync(fd, path: tmp) }
        } catch {
            close(fd)
            _ = Glibc.unlink(tmp)
            throw error
        }
        // Closed exactly once, before the rename: a second close after a failed rename
        // would close whatever another thread had opened under the same number since.
        close(fd)
        do {
            crashPoints?.hitBefore()
            try rename(tmp, path)
            crashPoints?.hitAfter()
        } catch {
            _ = Glibc.unlink(tmp)
            throw error
        }
        if durable { try fsyncDirectory(parent(of: path)) }
    }

    /// Creates `path` with `bytes` only if nothing is there: a temp file is written and
    /// fsynced, then `link(2)`ed into place, which fails with EEXIST instead of replacing.
    /// `crashPoints` are hit just before and after the link (see `CrashPoint`).
    /// - Returns: false when `path` already existed (nothing was changed).
    public static func createExclusive(_ path: String, _ bytes: [UInt8], crashPoints: PublishCrashPoints? = nil) throws -> Bool {
        let tmp = temporaryName(for: path)
        let fd = try open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
        defer { _ = Glibc.unlink(tmp) }
        do {
            try writeAll(fd, bytes, path: tmp)
            try fsync(fd, path: tmp)
            close(fd)
        } catch {
            close(fd)
            throw error
        }
        try FaultInjection.check(.link, path)
        crashPoints?.hitBefore()
        if Glibc.link(tmp, path) != 0 {
            if errno == EEXIST { return false }
            throw FileSystemError(call: "link", path: path, errno: errno)
        }
        crashPoints?.hitAfter()
        try fsyncDirectory(parent(of: path))
        return true
    }

    // MARK: names

    /// `link(2)`: gives the file at `existing` a second name, never replacing anything.
    /// - Returns: false when `path` already exists (EEXIST).
    public static func link(_ existing: String, _ path: String) throws -> Bool {
        try FaultInjection.check(.link, path)
        if Glibc.link(existing, path) != 0 {
            if errno == EEXIST { return false }
            throw FileSystemError(call: "link", path: path, errno: errno)
        }
        return true
    }

    /// `rename(2)`.
    public static func rename(_ from: String, _ to: String) throws {
        try FaultInjection.check(.rename, to)
        if Glibc.rename(from, to) != 0 {
            throw FileSystemError(call: "rename", path: to, errno: errno)
        }
    }

    /// `unlink(2)`; a missing file is not an error.
    public static func unlink(_ path: String) throws {
        try FaultInjection.check(.unlink, path)
        if Glibc.unlink(path) != 0 && errno != ENOENT {
            throw FileSystemError(call: "unlink", path: path, errno: errno)
        }
    }

    /// `mkdir(2)` for `path` and its missing parents; an existing directory is fine.
    public static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        if isDirectory(path) { return }
        let up = parent(of: path)
        if up != path && !up.isEmpty { try makeDirectories(up, mode: mode) }
        try FaultInjection.check(.mkdir, path)
        if Glibc.mkdir(path, mode) != 0 && errno != EEXIST {
            throw FileSystemError(call: "mkdir", path: path, errno: errno)
        }
    }

    /// `lstat(2)`, nil when the path does not exist.
    public static func lstat(_ path: String) throws -> Glibc.stat? {
        var st = Glibc.stat()
        if Glibc.lstat(path, &st) == 0 { return st }
        if errno == ENOENT || errno == ENOTDIR { return nil }
        throw FileSystemError(call: "lstat", path: path, errno: errno)
    }

    /// `lstat` of `relativePaths[range]` under `base`, nil for those that do not exist.
    /// Each directory is opened once and its entries are stat'ed with
    /// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`, which skips the path walk a full-path
    /// `lstat` repeats; sorted paths keep a directory's entries together.
    public static func lstat(_ relativePaths: [String], in range: Range<Int>, under base: String,
                             into out: UnsafeMutableBufferPointer<Glibc.stat?>) throws {
        var currentDirectory: Substring?
        var fd: Int32 = -1
        defer { if fd >= 0 { Glibc.close(fd) } }
        for i in range {
            let rel = relativePaths[i]
            let slash = rel.lastIndex(of: "/")
            let dir = slash.map { rel[..<$0] } ?? ""
            let name = slash.map { String(rel[rel.index(after: $0)...]) } ?? rel
            if dir != currentDirectory {
                if fd >= 0 { Glibc.close(fd) }
                currentDirectory = dir
                fd = Glibc.open(dir.isEmpty ? base : base + "/" + dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
            }
            if fd < 0 {
                // A missing directory (its files were deleted): every path in it is missing.
                if errno == ENOENT || errno == ENOTDIR || errno == ELOOP { out[i] = nil; continue }
                throw FileSystemError(call: "open", path: base + "/" + dir, errno: errno)
            }
            var st = Glibc.stat()
            if fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 {
                out[i] = st
            } else if errno == ENOENT || errno == ENOTDIR {
                out[i] = nil
            } else {
                throw FileSystemError(call: "fstatat", path: base + "/" + rel, errno: errno)
            }
        }
    }

    /// `stat(2)` (follows symlinks), nil when the path does not exist.
    public static func stat(_ path: String) throws -> Glibc.stat? {
        var st = Glibc.stat()
        if fstatat(AT_FDCWD, path, &st, 0) == 0 { return st }
        if errno == ENOENT || errno == ENOTDIR { return nil }
        throw FileSystemError(call: "stat", path: path, errno: errno)
    }

    public static func exists(_ path: String) -> Bool {
        var st = Glibc.stat()
        return Glibc.lstat(path, &st) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = Glibc.stat()
        return fstatat(AT_FDCWD, path, &st, 0) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// `readlink(2)`.
    public static func readLink(_ path: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = Glibc.readlink(path, &buffer, buffer.count - 1)
        if n < 0 { throw FileSystemError(call: "readlink", path: path, errno: errno) }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `symlink(2)`.
    public static func symlink(target: String, at path: String) throws {
        try FaultInjection.check(.write, path)
        if Glibc.symlink(target, path) != 0 {
            throw FileSystemError(call: "symlink", path: path, errno: errno)
        }
    }

    /// One directory entry from `readdir(3)`.
    public struct DirectoryEntry: Sendable {
        public var name: String
        /// `d_type`: DT_REG, DT_DIR, DT_LNK, or DT_UNKNOWN when the file system does not say.
        public var type: UInt8
    }

    /// Lists a directory (`opendir`/`readdir`), without `.` and `..`, unsorted.
    public static func listDirectory(_ path: String) throws -> [DirectoryEntry] {
        guard let dir = opendir(path) else {
            throw FileSystemError(call: "opendir", path: path, errno: errno)
        }
        defer { closedir(dir) }
        var entries: [DirectoryEntry] = []
        while let ent = readdir(dir) {
            let name = withUnsafePointer(to: &ent.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            entries.append(DirectoryEntry(name: name, type: ent.pointee.d_type))
        }
        return entries
    }

    /// Lists a directory with each entry's `lstat` data (`opendir`, `readdir`, and
    /// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`, which skips the path walk a full-path
    /// `lstat` repeats). Entries that vanish between readdir and fstatat are left out.
    public static func listDirectoryWithStats(_ path: String) throws -> [(name: String, stat: Glibc.stat)] {
        guard let dir = opendir(path) else {
            throw FileSystemError(call: "opendir", path: path, errno: errno)
        }
        defer { closedir(dir) }
        let fd = dirfd(dir)
        var entries: [(name: String, stat: Glibc.stat)] = []
        while let ent = readdir(dir) {
            let done: Bool = withUnsafePointer(to: &ent.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { cname in
                    if cname[0] == 46 && (cname[1] == 0 || (cname[1] == 46 && cname[2] == 0)) { return false }
                    var st = Glibc.stat()
                    if fstatat(fd, cname, &st, AT_SYMLINK_NOFOLLOW) != 0 { return errno != ENOENT }
                    let name = String(decoding: UnsafeRawBufferPointer(start: cname, count: strlen(cname)), as: UTF8.self)
                    entries.append((name, st))
                    return false
                }
            }
            if done { throw FileSystemError(call: "fstatat", path: path, errno: errno) }
        }
        return entries
    }

    /// Removes a file or a directory tree (`unlink`, `rmdir`); missing is fine.
    public static func removeTree(_ path: String) throws {
        guard let st = try lstat(path) else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for entry in try listDirectory(path) {
                try removeTree(path + "/" + entry.name)
            }
            if Glibc.rmdir(path) != 0 && errno != ENOENT {
                throw FileSystemError(call: "rmdir", path: path, errno: errno)
            }
        } else {
            try unlink(path)
        }
    }

    // MARK: path helpers

    public static func parent(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        if slash == path.utf8.startIndex { return "/" }
        return String(path[..<slash])
    }

    public static func baseName(of path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return path }
        return String(path[path.utf8.index(after: slash)...])
    }

    /// A name beside `path` for a temp file: `.NAME.tmp-PID-N`.
    public static func temporaryName(for path: String) -> String {
        let n = temporaryCounter.add(1)
        return parent(of: path) + "/." + baseName(of: path) + ".tmp-\(getpid())-\(n)"
    }

    private static let temporaryCounter = AtomicCounter()

    /// The current working directory (`getcwd(3)`).
    public static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "." }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// An absolute, lexically normalised form of `path` (no `.`, `..` or double slashes).
    public static func absolute(_ path: String, relativeTo base: String? = nil) -> String {
        let start = path.hasPrefix("/") ? path : (base ?? currentDirectory()) + "/" + path
        var parts: [Substring] = []
        for part in start.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// `realpath(3)`: the absolute path with symlinks resolved.
    public static func realPath(_ path: String) throws -> String {
        guard let p = realpath(path, nil) else {
            throw FileSystemError(call: "realpath", path: path, errno: errno)
        }
        defer { free(p) }
        return String(cString: p)
    }
}

/// A counter safe to bump from several threads.
public final class AtomicCounter: Sendable {
    private let value = Atomic<Int>(0)
    public init() {}
    /// Adds `n` and returns the new value.
    @discardableResult
    public func add(_ n: Int) -> Int { value.add(n, ordering: .relaxed).newValue }
    public var current: Int { value.load(ordering: .relaxed) }
}
