import Dispatch
import MLVBasics
import MLVModel
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// Scans a directory (or one file) into trees, reusing the stat cache, and either stores
/// new chunks (`add`) or only computes ids (`status`).
///
/// Small files are read and hashed by two workers in parallel; a large file is mapped
/// and its whole-file SHA-256 runs beside the chunker, then its chunks are hashed and
/// stored by two workers. Only chunks the store lacks are written.
final class Ingest: @unchecked Sendable {
    enum Mode { case store, hashOnly }

    /// A scanned file system entry; directories hold their children.
    final class Node {
        let name: String
        let kind: Tree.Kind
        var mode: UInt32
        var size: Int64
        var id: ObjectID?
        var target: String?
        var children: [Node] = []
        var files: Int64 = 0
        /// Stat data, for files.
        var stat: StatCache.Entry?
        var absolutePath = ""

        init(name: String, kind: Tree.Kind, mode: UInt32, size: Int64) {
            self.name = name; self.kind = kind; self.mode = mode; self.size = size
        }
    }

    struct Result {
        var root: Node
        var rootID: ObjectID
        /// Files and bytes (file sizes plus symlink target lengths, as trees count them).
        var files: Int64
        var bytes: Int64
        /// Every tree built, by id (for `status` diffs before anything is stored).
        var trees: [ObjectID: Tree]
        /// The new stat cache, built only when it is to be written.
        var makeCache: () -> StatCache
        var filesHashed: Int
        /// Files whose stat moved but whose XXH3-128 showed the same content.
        var filesQuickChecked: Int
    }

    let repository: Repository
    let mode: Mode
    let chunker: FastCDC
    let writer: PackWriter?
    let progress: Progress?
    private let hashedFiles = AtomicCounter()
    private let quickChecked = AtomicCounter()
    /// Files above this size take the mapped, pipelined path.
    static let largeFile = 4 << 20
    /// How much of a large file is in flight at once.
    static let window = 64 << 20

    init(repository: Repository, mode: Mode, writer: PackWriter?, progress: Progress?) throws {
        self.repository = repository
        self.mode = mode
        self.writer = writer
        self.progress = progress
        chunker = try wrap { try FastCDC(repository.config.chunker) }
    }

    // MARK: scanning

    /// Scans `path` (a directory or a single file), validating every name.
    /// When every file matched the stat cache in order, the structure signature is
    /// unchanged, and the cache's root is `reusableRoot` (the latest version's root,
    /// whose trees are stored and reachable), that root id is reused instead of building
    /// and hashing every tree. Pass nil when node ids are needed (splits).
    func scan(_ path: String, previous: StatCacheLoad, reusableRoot: ObjectID? = nil) throws -> Result {
        let scanStarted = repository.fileSystemNow()
        // The dataset's own path may be a symlink (data -> /mnt/big/data): follow that
        // one. Symlinks inside the tree are recorded as symlinks, never followed.
        let st: stat
        do {
            guard let s = try FS.stat(path) else { throw MLVError.pathNotFound(path) }
            st = s
        } catch let e as FileSystemError { throw MLVError.unreadable(path: path, cause: e) }
        var files: [(node: Node, rel: String)] = []
        let root: Node
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            root = Node(name: "", kind: .dir, mode: UInt32(st.st_mode & 0o777), size: 0)
            try walk(directory: path, relative: "", into: root, files: &files)
        case S_IFREG:
            // A single file becomes a one-entry tree named after the file.
            root = Node(name: "", kind: .dir, mode: 0o755, size: 0)
            let name = FS.baseName(of: path)
            if let p = PathRules.problem(withName: name) { throw MLVError.unsafePath(path: path, reason: p) }
            let node = fileNode(name: name, path: path, st: st)
            root.children = [node]
            files.append((node, name))
        default:
            throw MLVError.unsupportedFile(path: path, what: describe(st.st_mode))
        }

        return try finishScan(root: root, files: files, source: FS.absolute(path), scanStarted: scanStarted,
                              previous: previous, reusableRoot: reusableRoot)
    }

    /// Scans the files named by `relativePaths` under `base` (a git work tree's tracked
    /// and untracked-not-ignored files) into trees, through the stat cache like `scan`.
    /// Paths that no longer exist (deleted but still tracked) and directories (git
    /// submodules) are left out; symlinks are recorded, never followed.
    /// - Throws: `MLVError.unsafePath` for a path that could escape a checkout.
    func scan(base: String, relativePaths: [String], previous: StatCacheLoad, reusableRoot: ObjectID? = nil) throws -> Result {
        let scanStarted = repository.fileSystemNow()
        let root = Node(name: "", kind: .dir, mode: 0o755, size: 0)
        var directories: [String: Node] = ["": root]
        func directory(_ rel: Substring) -> Node {
            if let d = directories[String(rel)] { return d }
            let parentPath = rel.lastIndex(of: "/").map { rel[..<$0] } ?? ""
            let name = rel.lastIndex(of: "/").map { String(rel[rel.index(after: $0)...]) } ?? String(rel)
            let node = Node(name: name, kind: .dir, mode: 0o755, size: 0)
            directory(parentPath).children.append(node)
            directories[String(rel)] = node
            return node
        }
        let sorted = indicesInUTF8Order(relativePaths).map { relativePaths[$0] }
        for rel in sorted {
            if let p = PathRules.problem(withRelativePath: rel) { throw MLVError.unsafePath(path: rel, reason: p) }
        }
        // lstat by two workers; the tree is built in order afterwards.
        var stats = [Glibc.stat?](repeating: nil, count: sorted.count)
        let batch = 512
        try stats.withUnsafeMutableBufferPointer { out in
            let out = out
            try Parallel.forEach((sorted.count + batch - 1) / batch) { b in
                do {
                    try FS.lstat(sorted, in: (b * batch)..<min(sorted.count, (b + 1) * batch), under: base, into: out)
                } catch let e as FileSystemError { throw MLVError.unreadable(path: e.path, cause: e) }
            }
        }
        for (rel, st) in zip(sorted, stats) {
            let path = base + "/" + rel
            guard let st else { continue }
            let slash = rel.lastIndex(of: "/")
            let name = slash.map { String(rel[rel.index(after: $0)...]) } ?? rel
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                directory(slash.map { rel[..<$0] } ?? "").children.append(fileNode(name: name, path: path, st: st))
            case S_IFLNK:
                let target: String
                do { target = try FS.readLink(path) } catch let e as FileSystemError { throw MLVError.unreadable(path: path, cause: e) }
                let node = Node(name: name, kind: .symlink, mode: 0o777, size: Int64(target.utf8.count))
                node.target = target
                directory(slash.map { rel[..<$0] } ?? "").children.append(node)
            default:
                continue
            }
        }
        var files: [(node: Node, rel: String)] = []
        func collect(_ node: Node, _ prefix: String) {
            node.children.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
            for c in node.children where c.kind == .file { files.append((c, prefix + c.name)) }
            for c in node.children where c.kind == .dir { collect(c, prefix + c.name + "/") }
        }
        collect(root, "")
        return try finishScan(root: root, files: files, source: "code:" + base, scanStarted: scanStarted,
                              previous: previous, reusableRoot: reusableRoot)
    }

    /// What both scans share once the files are listed: reuse the stat cache, hash what
    /// changed, and build (or reuse) the trees.
    private func finishScan(root: Node, files: [(node: Node, rel: String)], source: String, scanStarted: Int64,
                            previous: StatCacheLoad, reusableRoot: ObjectID?) throws -> Result {
        // Reuse what the stat cache says where it can be trusted. Its entries are in scan
        // order, so an unchanged tree matches entry by entry; a dictionary is built only
        // once the orders diverge.
        let usable = previous.value.flatMap { $0.source == source ? $0 : nil }
        let old = usable?.entries ?? []
        var byPath: [String: Int]?
        var cursor = 0
        func cachedEntry(_ rel: String) -> StatCache.Entry? {
            if byPath == nil {
                if cursor < old.count && old[cursor].path == rel {
                    cursor += 1
                    return old[cursor - 1]
                }
                var map: [String: Int] = [:]
                map.reserveCapacity(old.count)
                for (i, e) in old.enumerated() { map[e.path] = i }
                byPath = map
            }
            return byPath![rel].map { old[$0] }
        }
        var work: [(node: Node, rel: String, quick: (UInt64, UInt64)?)] = []
        for (node, rel) in files {
            guard let old = cachedEntry(rel), let now = node.stat, old.size == now.size, old.mode == now.mode else {
                work.append((node, rel, nil)); continue
            }
            let storedOK = mode == .hashOnly || writer!.has(old.blob)
            if old.matches(now) && !usable!.isRacy(old) && storedOK {
                node.id = old.blob
                node.stat!.blob = old.blob
                node.stat!.quickHigh = old.quickHigh
                node.stat!.quickLow = old.quickLow
            } else {
                // Stat moved (or is racy) but the size did not: XXH3-128 decides first.
                work.append((node, rel, storedOK ? (old.quickHigh, old.quickLow) : nil))
                if storedOK { node.id = old.blob }
            }
        }
        try hash(work)

        let structure = Self.structureSignature(root)
        let (fileCount, byteCount) = Self.totals(root)
        var trees: [ObjectID: Tree] = [:]
        let rootID: ObjectID
        if let reusableRoot, let usable, usable.root == reusableRoot, work.isEmpty, byPath == nil,
           cursor == old.count, files.count == old.count,
           usable.structureHigh == structure.high, usable.structureLow == structure.low {
            rootID = usable.root
        } else {
            rootID = try buildTrees(root, trees: &trees)
        }
        let makeCache = {
            StatCache(source: source, root: rootID, scanStarted: scanStarted,
                      structureHigh: structure.high, structureLow: structure.low, entries: files.map { (node, rel) in
                var e = node.stat!
                e.path = rel
                e.blob = node.id!
                return e
            })
        }
        return Result(root: root, rootID: rootID, files: fileCount, bytes: byteCount, trees: trees, makeCache: makeCache,
                      filesHashed: hashedFiles.current,
                      filesQuickChecked: quickChecked.current)
    }

    private func statOrThrow(_ path: String) throws -> stat? {
        do { return try FS.lstat(path) } catch let e as FileSystemError { throw MLVError.unreadable(path: path, cause: e) }
    }

    private func describe(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "named pipe"
        case S_IFSOCK: "socket"
        case S_IFCHR: "character device"
        case S_IFBLK: "block device"
        default: "special file"
        }
    }

    private func fileNode(name: String, path: String, st: stat) -> Node {
        let node = Node(name: name, kind: .file, mode: UInt32(st.st_mode & 0o777), size: Int64(st.st_size))
        node.absolutePath = path
        node.stat = StatCache.Entry(
            path: "", mode: UInt32(st.st_mode), dev: UInt64(st.st_dev), ino: UInt64(st.st_ino), size: UInt64(st.st_size),
            mtimeNanoseconds: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
            ctimeNanoseconds: Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec),
            blob: ObjectID(digest: [UInt8](repeating: 0, count: 32)), quickHigh: 0, quickLow: 0)
        return node
    }

    /// Scans `directory` into `parent`. At the top level, subdirectories are walked by
    /// two workers; each subtree's files are appended in order afterwards.
    private func walk(directory: String, relative: String, into parent: Node, files: inout [(node: Node, rel: String)]) throws {
        var listing: [(name: String, stat: stat)]
        do { listing = try FS.listDirectoryWithStats(directory) } catch let e as FileSystemError {
            throw MLVError.unreadable(path: directory, cause: e)
        }
        // Sort indexes, not the 144-byte stat records.
        let order = indicesInUTF8Order(listing.map(\.name))
        listing = order.map { listing[$0] }
        if relative.isEmpty && directory == repository.root {
            listing.removeAll { $0.name == Repository.storeDirectoryName }
        }
        for entry in listing {
            if let p = PathRules.problem(withName: entry.name) { throw MLVError.unsafePath(path: directory + "/" + entry.name, reason: p) }
        }
        if let clash = PathRules.firstCollision(listing.map(\.name)) {
            throw MLVError.unsafePath(path: directory + "/" + clash, reason: "collides with another name in its directory on a case-insensitive file system")
        }
        var children: [Node] = []
        var subdirectories: [(index: Int, node: Node, path: String, rel: String)] = []
        for entry in listing {
            let path = directory + "/" + entry.name
            let rel = relative.isEmpty ? entry.name : relative + "/" + entry.name
            let st = entry.stat
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                let node = fileNode(name: entry.name, path: path, st: st)
                children.append(node)
                files.append((node, rel))
            case S_IFDIR:
                let node = Node(name: entry.name, kind: .dir, mode: UInt32(st.st_mode & 0o777), size: 0)
                children.append(node)
                subdirectories.append((children.count - 1, node, path, rel))
            case S_IFLNK:
                let target: String
                do { target = try FS.readLink(path) } catch let e as FileSystemError { throw MLVError.unreadable(path: path, cause: e) }
                let node = Node(name: entry.name, kind: .symlink, mode: 0o777, size: Int64(target.utf8.count))
                node.target = target
                children.append(node)
            default:
                throw MLVError.unsupportedFile(path: path, what: describe(st.st_mode))
            }
        }
        parent.children = children
        if relative.isEmpty && subdirectories.count > 1 {
            var found = [[(node: Node, rel: String)]](repeating: [], count: subdirectories.count)
            try found.withUnsafeMutableBufferPointer { out in
                let out = out
                try Parallel.forEach(subdirectories.count) { i in
                    let d = subdirectories[i]
                    var mine: [(node: Node, rel: String)] = []
                    try walk(directory: d.path, relative: d.rel, into: d.node, files: &mine)
                    out[i] = mine
                }
            }
            for list in found { files += list }
        } else {
            for d in subdirectories {
                try walk(directory: d.path, relative: d.rel, into: d.node, files: &files)
            }
        }
    }

    // MARK: hashing

    private func hash(_ work: [(node: Node, rel: String, quick: (UInt64, UInt64)?)]) throws {
        let small = work.filter { $0.node.size <= Self.largeFile }
        let large = work.filter { $0.node.size > Self.largeFile }
        let buffers = Locked<[[UInt8]]>([])
        try Parallel.forEach(small.count) { i in
            var buffer = buffers.withLock { $0.popLast() } ?? [UInt8](repeating: 0, count: Self.largeFile + 1)
            defer { buffers.withLock { $0.append(buffer) } }
            try hashSmall(small[i].node, quick: small[i].quick, buffer: &buffer)
        }
        for item in large {
            try hashLarge(item.node, quick: item.quick)
        }
    }

    private func readError(_ node: Node, _ e: Error) -> Error {
        if let fs = e as? FileSystemError { return MLVError.unreadable(path: node.absolutePath, cause: fs) }
        return e
    }

    private func hashSmall(_ node: Node, quick: (UInt64, UInt64)?, buffer: inout [UInt8]) throws {
        let path = node.absolutePath
        let size = Int(node.size)
        do {
            let fd = try FS.open(path, O_RDONLY | O_NOFOLLOW)
            defer { FS.close(fd) }
            // Exactly the size the scan saw: one pread(2) for a small file. A file that
            // shrank meanwhile is an error; one that grew is stored as scanned.
            let n = try buffer.withUnsafeMutableBytes { try FS.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<size]), at: 0, path: path) }
            guard n == size else {
                throw MLVError.damaged("'\(path)' shrank while being read (\(size) then \(n) bytes); try again")
            }
        } catch { throw readError(node, error) }
        try buffer.withUnsafeBytes { raw in
            let data = UnsafeRawBufferPointer(rebasing: raw[0..<size])
            try ingest(node, data, quick: quick)
        }
    }

    private func hashLarge(_ node: Node, quick: (UInt64, UInt64)?) throws {
        let file: MappedFile
        do { file = try MappedFile(path: node.absolutePath) } catch { throw readError(node, error) }
        guard file.count == Int(node.size) else {
            throw MLVError.damaged("'\(node.absolutePath)' changed size while being read; try again")
        }
        try ingest(node, file.bytes, quick: quick)
    }

    /// Hashes (and in store mode, chunks and stores) one file's bytes.
    private func ingest(_ node: Node, _ data: UnsafeRawBufferPointer, quick: (UInt64, UInt64)?) throws {
        let large = data.count > Self.largeFile
        if let quick, node.id != nil {
            // Stat data moved but the size did not: if XXH3-128 says the content is the
            // same, the cached blob id stands and nothing is hashed or stored.
            let q = large ? Self.windowedQuickHash(data) : XXHash.xxh3_128(data)
            node.stat!.quickHigh = q.high
            node.stat!.quickLow = q.low
            if quick == (q.high, q.low) {
                quickChecked.add(1)
                return
            }
        }
        hashedFiles.add(1)
        defer { progress?.advance(bytes: data.count) }
        if !large {
            let q = XXHash.xxh3_128(data)
            node.stat!.quickHigh = q.high
            node.stat!.quickLow = q.low
        }
        guard mode == .store, let writer else {
            if large {
                let (id, q) = Self.windowedHash(data)
                node.id = id
                node.stat!.quickHigh = q.high
                node.stat!.quickLow = q.low
            } else {
                node.id = SHA256.hash(data)
            }
            return
        }
        if data.count <= chunker.parameters.min {
            let id = SHA256.hash(data)
            try wrap { try writer.put(id, kind: .chunk, bytes: data, compression: .auto) }
            node.id = id
            return
        }
        let (id, q) = try storeChunked(data, writer: writer)
        node.id = id
        if large {
            node.stat!.quickHigh = q.high
            node.stat!.quickLow = q.low
        }
    }

    /// Drops the pages of `data[start..<end]` from this process's mapping (the page
    /// cache keeps them), so a large file never becomes resident all at once.
    static func release(_ data: UnsafeRawBufferPointer, _ start: Int, _ end: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let a = start / page * page, b = end / page * page
        if b > a { _ = madvise(UnsafeMutableRawPointer(mutating: data.baseAddress! + a), b - a, MADV_DONTNEED) }
    }

    /// XXH3-128 of a large mapped file, window by window.
    static func windowedQuickHash(_ data: UnsafeRawBufferPointer) -> (high: UInt64, low: UInt64) {
        let q = XXH3_128Stream()
        var at = 0
        while at < data.count {
            let end = min(data.count, at + window)
            q.update(UnsafeRawBufferPointer(rebasing: data[at..<end]))
            release(data, at, end)
            at = end
        }
        return q.digest
    }

    /// SHA-256 and XXH3-128 of a large mapped file, window by window.
    static func windowedHash(_ data: UnsafeRawBufferPointer) -> (ObjectID, (high: UInt64, low: UInt64)) {
        var sha = SHA256()
        let q = XXH3_128Stream()
        var at = 0
        while at < data.count {
            let end = min(data.count, at + window)
            let piece = UnsafeRawBufferPointer(rebasing: data[at..<end])
            sha.update(piece)
            q.update(piece)
            release(data, at, end)
            at = end
        }
        return (sha.finalize(), q.digest)
    }

    /// Cuts `data` into chunks, stores the new ones, and returns the blob id.
    ///
    /// A large file is processed in windows of `window` bytes: the whole-file SHA-256
    /// of each window runs on a serial queue while this thread finds the cut points and
    /// two workers hash and store the chunks; then the window's pages are dropped from
    /// the mapping (`madvise(MADV_DONTNEED)`), so memory stays near two windows however
    /// large the file. Nothing waits inside a worker, so the workers may run in any
    /// order without deadlock. Files below `largeFile` are already processed two at a
    /// time, so they are chunked on the calling thread.
    func storeChunked(_ data: UnsafeRawBufferPointer, writer: PackWriter) throws -> (ObjectID, (high: UInt64, low: UInt64)) {
        let parallel = data.count > Self.largeFile
        final class Whole: @unchecked Sendable { var hasher = SHA256(); let quick = XXH3_128Stream() }
        let whole = Whole()
        let shaQueue = DispatchQueue(label: "mlv.ingest.whole-sha")
        var chunks: [(id: ObjectID, length: Int)] = []
        chunks.reserveCapacity(data.count / chunker.parameters.avg + 1)
        // Tensor boundaries are cut points too (see TensorLayout); none for other files.
        let boundaries = repository.config.alignTensors ? TensorLayout.safetensorsBoundaries(data) ?? [] : []
        var nextBoundary = 0
        var position = 0
        while position < data.count {
            // Cut every chunk that starts inside this window (it may end past it).
            let windowEnd = parallel ? min(data.count, position + Self.window) : data.count
            var cuts: [(offset: Int, length: Int)] = []
            var at = position
            while at < windowEnd {
                while nextBoundary < boundaries.count && boundaries[nextBoundary] <= at { nextBoundary += 1 }
                let limit = nextBoundary < boundaries.count ? boundaries[nextBoundary] : data.count
                let n = chunker.cut(UnsafeRawBufferPointer(rebasing: data[at..<limit]))
                cuts.append((at, n))
                at += n
            }
            let span = UncheckedSendable(UnsafeRawBufferPointer(rebasing: data[position..<at]))
            shaQueue.async {
                whole.hasher.update(span.value)
                if parallel { whole.quick.update(span.value) }
            }
            var ids = [ObjectID](repeating: ObjectID(digest: [UInt8](repeating: 0, count: 32)), count: cuts.count)
            let failure: Error? = ids.withUnsafeMutableBufferPointer { out -> Error? in
                let out = out
                do {
                    try Parallel.forEach(cuts.count, workers: parallel ? 2 : 1) { i in
                        let piece = UnsafeRawBufferPointer(rebasing: data[cuts[i].offset..<(cuts[i].offset + cuts[i].length)])
                        let id = SHA256.hash(piece)
                        out[i] = id
                        try writer.put(id, kind: .chunk, bytes: piece, compression: .auto)
                    }
                    return nil
                } catch { return error }
            }
            shaQueue.sync {}
            if let failure { try wrap { throw failure } }
            for (id, cut) in zip(ids, cuts) { chunks.append((id, cut.length)) }
            if parallel { Self.release(data, position, at) }
            position = at
        }
        let blob = shaQueue.sync { whole.hasher.finalizeAndReset() }
        let quick = whole.quick.digest
        if chunks.count > 1 {
            try wrap { try writer.put(blob, kind: .chunkList, bytes: ChunkList.encode(chunks), compression: .never) }
        }
        return (blob, quick)
    }

    // MARK: trees

    /// XXH3-128 over every entry's kind, path, mode and symlink target, in scan order:
    /// what the stat cache does not already cover. Equal signatures and equal file
    /// entries mean equal trees.
    static func structureSignature(_ root: Node) -> (high: UInt64, low: UInt64) {
        let stream = XXH3_128Stream()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 16)
        func visit(_ node: Node, _ depth: UInt32) {
            for child in node.children {
                buffer.append(child.kind == .file ? 1 : child.kind == .dir ? 2 : 3)
                buffer.appendLE(depth)
                buffer.appendLE(child.mode)
                buffer.append(contentsOf: child.name.utf8)
                buffer.append(0)
                if let t = child.target { buffer.append(contentsOf: t.utf8); buffer.append(0) }
                if buffer.count > 60_000 { buffer.withUnsafeBytes { stream.update($0) }; buffer.removeAll(keepingCapacity: true) }
                if child.kind == .dir { visit(child, depth + 1); buffer.append(4) }
            }
        }
        visit(root, 0)
        buffer.withUnsafeBytes { stream.update($0) }
        return stream.digest
    }

    /// File count and byte total of a scanned tree, counted as trees count them.
    static func totals(_ node: Node) -> (files: Int64, bytes: Int64) {
        var files: Int64 = 0, bytes: Int64 = 0
        for child in node.children {
            switch child.kind {
            case .file: files += 1; bytes += child.size
            case .symlink: bytes += child.size
            case .dir:
                let (f, b) = totals(child)
                files += f; bytes += b
            }
        }
        return (files, bytes)
    }

    /// Builds tree objects bottom-up; stores them in store mode.
    private func buildTrees(_ node: Node, trees: inout [ObjectID: Tree]) throws -> ObjectID {
        var entries: [Tree.Entry] = []
        entries.reserveCapacity(node.children.count)
        var size: Int64 = 0, files: Int64 = 0
        for child in node.children {
            switch child.kind {
            case .dir:
                child.id = try buildTrees(child, trees: &trees)
                files += child.files
            case .file:
                files += 1
            case .symlink:
                break
            }
            size += child.size
            entries.append(Tree.Entry(name: child.name, kind: child.kind, mode: child.mode, size: child.size,
                                      id: child.id, target: child.target))
        }
        node.size = size
        node.files = files
        let tree = Tree(entries: entries)
        let bytes = tree.canonicalBytes()
        let id = SHA256.hash(bytes)
        trees[id] = tree
        if mode == .store, let writer {
            try wrap { try writer.put(id, kind: .tree, bytes: bytes, compression: .always) }
        }
        node.id = id
        return id
    }
}

/// A stat cache read and decoded on another thread while the directory is walked.
final class StatCacheLoad: @unchecked Sendable {
    private let group = DispatchGroup()
    private var loaded: StatCache?

    /// Starts reading `path` in the background.
    init(path: String) {
        DispatchQueue.global().async(group: group) { [self] in
            loaded = (try? FS.readFileIfExists(path))?.flatMap(StatCache.decode)
        }
    }

    /// The decoded cache (nil when absent or damaged), waiting for it if need be.
    var value: StatCache? {
        group.wait()
        return loaded
    }
}

/// Progress reports for long operations; the commands render them on stderr.
public final class Progress: @unchecked Sendable {
    private let bytes = AtomicCounter()
    private let report: @Sendable (Int) -> Void
    private let lastReport = AtomicCounter()

    public init(report: @escaping @Sendable (Int) -> Void) {
        self.report = report
    }

    func advance(bytes n: Int) {
        let total = bytes.add(n)
        let now = monotonicMilliseconds()
        let last = lastReport.current
        if now - last >= 200 {
            lastReport.add(now - last)
            report(total)
        }
    }
}
