import MLVBasics
import MLVModel
import MLVStore

/// The state of a git work tree, read by running `git` (never by parsing `.git`).
struct GitState: Sendable {
    /// The work tree's top directory (absolute).
    var top: String
    var commit: String?
    var branch: String?
    /// The remote URL (`origin`, else the first remote) without credentials.
    var remote: String?
    var dirty: Bool
}

enum Git {
    /// The environment git runs with: no optional locks (`git status` would otherwise
    /// refresh and write the index), and no pager or prompt.
    static func environment() -> [String: String] {
        var env = Subprocess.currentEnvironment()
        env["GIT_OPTIONAL_LOCKS"] = "0"
        env["GIT_TERMINAL_PROMPT"] = "0"
        env["GIT_PAGER"] = "cat"
        return env
    }

    /// Runs `git ARGS` in `directory`: stdout when it exits 0, nil otherwise (git
    /// missing, not a work tree, no such ref).
    static func run(_ arguments: [String], in directory: String) -> [UInt8]? {
        guard let r = try? Subprocess.capture(["git"] + arguments, directory: directory, environment: environment()),
              r.termination == .exited(0) else { return nil }
        return r.stdout
    }

    /// False when git could not find a work tree from `directory`: no `.git` (a directory,
    /// or the file a linked work tree or submodule has) in it or any directory above, and
    /// no `GIT_DIR` or `GIT_WORK_TREE` to point git elsewhere. Git discovers a repository
    /// only that way, so outside one `mlv run` starts no git process (two failing
    /// `rev-parse`s cost a few milliseconds of every run). True means "ask git".
    static func mayBeInWorkTree(_ directory: String) -> Bool {
        let env = Subprocess.currentEnvironment()
        if env["GIT_DIR"] != nil || env["GIT_WORK_TREE"] != nil { return true }
        var dir = (try? FS.realPath(directory)) ?? FS.absolute(directory)
        while true {
            // An lstat that fails for another reason than "not there" leaves it to git.
            do { if try FS.lstat(dir == "/" ? "/.git" : dir + "/.git") != nil { return true } } catch { return true }
            guard dir != "/", let slash = dir.lastIndex(of: "/") else { return false }
            dir = slash == dir.startIndex ? "/" : String(dir[..<slash])
        }
    }

    /// The state of the work tree containing `directory`, with its file list and (when
    /// dirty) its diff against HEAD; nil when it is not in a work tree.
    ///
    /// One `rev-parse` finds the top directory, the commit and the branch; then `ls-files`
    /// (tracked and untracked-not-ignored files, tagged), `diff HEAD --binary` and the
    /// remote lookup run at once. Only `diff` stats the tracked files, so the work tree is
    /// walked about once. Dirty means a non-empty diff or an untracked file; untracked
    /// files inside `store` (the `.mlv` directory, when it is in the work tree and not
    /// ignored) do not count.
    static func capture(in directory: String, store: String) -> (state: GitState, files: [String], diff: [UInt8]?)? {
        guard mayBeInWorkTree(directory) else { return nil }
        var top = "", commit: String?, branch: String?
        if let out = run(["rev-parse", "--show-toplevel", "HEAD", "--symbolic-full-name", "HEAD"], in: directory) {
            let lines = String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init)
            guard lines.count >= 2 else { return nil }
            top = lines[0]
            commit = lines[1]
            if lines.count >= 3, lines[2].hasPrefix("refs/heads/") { branch = String(lines[2].dropFirst("refs/heads/".count)) }
        } else if let out = run(["rev-parse", "--show-toplevel"], in: directory) {
            // A repository without a commit yet.
            top = String(decoding: out, as: UTF8.self).trimmingNewlines
        } else {
            return nil
        }
        guard !top.isEmpty else { return nil }
        var commands: [[String]] = [
            ["ls-files", "-z", "-t", "--cached", "--others", "--exclude-standard"],
            ["config", "--get-regexp", "^remote\\..*\\.url$"],
        ]
        commands.append(commit != nil ? ["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff"] : ["symbolic-ref", "-q", "--short", "HEAD"])
        let out = (try? Parallel.map(commands, workers: commands.count) { run($0, in: top) })
            ?? [[UInt8]?](repeating: nil, count: commands.count)
        var state = GitState(top: top, commit: commit, branch: branch, dirty: false)
        let realTop = (try? FS.realPath(top)) ?? top
        let realStore = (try? FS.realPath(store)) ?? store
        let storePrefix = realStore.hasPrefix(realTop + "/") ? String(realStore.dropFirst(realTop.count + 1)) + "/" : nil
        // "<tag> <path>" entries: "?" untracked, any other tag tracked.
        var files: [String] = []
        var seen = Set<String>()
        for entry in (out[0] ?? []).split(separator: 0) where entry.count > 2 {
            let path = String(decoding: entry.dropFirst(2), as: UTF8.self)
            if entry.first == UInt8(ascii: "?") {
                if let storePrefix, path.hasPrefix(storePrefix) { continue }
                state.dirty = true
            } else if commit == nil {
                state.dirty = true
            }
            if seen.insert(path).inserted { files.append(path) }
        }
        // "remote.<name>.url <url>" lines: origin, else the first.
        var remotes: [(name: String, url: String)] = []
        for line in String(decoding: out[1] ?? [], as: UTF8.self).split(separator: "\n") {
            guard let space = line.firstIndex(of: " ") else { continue }
            let key = line[..<space]
            remotes.append((String(key.dropFirst("remote.".count).dropLast(".url".count)), String(line[line.index(after: space)...])))
        }
        if let remote = remotes.first(where: { $0.name == "origin" }) ?? remotes.first {
            state.remote = Redaction.stripURLCredentials(remote.url)
        }
        var diff: [UInt8]?
        if commit != nil {
            if let d = out[2], !d.isEmpty { diff = d; state.dirty = true }
        } else if let b = out[2] {
            state.branch = String(decoding: b, as: UTF8.self).trimmingNewlines
        }
        return (state, files, diff)
    }
}

/// The code a run used: git's view and the snapshot, plus where the command ran
/// relative to the snapshot's root (so a rerun can run there).
struct CapturedCode {
    var code: RunCode
    /// The working directory relative to the snapshot root (`.` for the root itself).
    var cwdInSnapshot: String?
    /// Saves the snapshot's stat cache; call once the objects are committed.
    var saveCache: () -> Void
}

extension Repository {
    /// Captures the code a run in `directory` uses, storing objects in `writer`.
    ///
    /// Inside a git work tree: commit, branch, remote (without credentials), dirty flag,
    /// `git diff HEAD --binary` as a blob, and a `mlv.code/1` snapshot (paths `["."]`) of
    /// the tracked and untracked-not-ignored files plus any `extraPaths`, scanned through
    /// a stat cache (`cache/stat/code-<XXH3 of the top directory>`), so an unchanged work
    /// tree costs one `lstat` per file. Outside git: a snapshot of `extraPaths` only, or
    /// nothing when none are given.
    /// - Throws: `MLVError` for an `extraPaths` entry that is missing or outside the work
    ///   tree or repository; store errors.
    func captureCode(directory: String, extraPaths: [String], writer: PackWriter) throws -> CapturedCode? {
        guard let (git, gitFiles, gitDiff) = Git.capture(in: directory, store: storePath) else {
            guard !extraPaths.isEmpty else { return nil }
            let snapshot = try snapshotCode(extraPaths.map { FS.absolute($0, relativeTo: directory) }, writer: writer)
            return CapturedCode(code: RunCode(snapshot: snapshot.id), cwdInSnapshot: relative(directory, to: root),
                                saveCache: {})
        }
        let top = (try? FS.realPath(git.top)) ?? git.top
        var paths = gitFiles
        for p in extraPaths {
            let abs = FS.absolute(p, relativeTo: directory)
            let real = (try? FS.realPath(abs)) ?? abs
            guard FS.exists(real) else { throw MLVError.pathNotFound(p) }
            guard real.hasPrefix(top + "/") else { throw MLVError.invalidArgument("--code '\(p)' is outside the git work tree '\(top)'") }
            paths.append(String(real.dropFirst(top.count + 1)))
        }
        // The store itself is never code.
        if let inside = relative(storePath, to: top) { paths.removeAll { $0 == inside || $0.hasPrefix(inside + "/") } }
        var code = RunCode(commit: git.commit, branch: git.branch, remote: git.remote, dirty: git.dirty)
        if let gitDiff { code.diff = try storeBlob(gitDiff, writer: writer) }
        let key = XXHash.xxh3_64(Array(top.utf8))
        let cacheFile = cachePath + "/stat/code-\(String(key, radix: 16))"
        let previous = StatCacheLoad(path: cacheFile)
        let ingest = try Ingest(repository: self, mode: .store, writer: writer, progress: nil)
        // The cached root may be reused only while its trees are still stored.
        let reusable = previous.value.map(\.root).flatMap { objects.contains($0) ? $0 : nil }
        let scan = try ingest.scan(base: top, relativePaths: paths, previous: previous, reusableRoot: reusable)
        let bytes = CodeManifest(root: scan.rootID, paths: ["."]).json.canonicalBytes()
        let id = SHA256.hash(bytes)
        if !writer.has(id) { try wrap { try writer.put(id, kind: .manifest, bytes: bytes, compression: .always) } }
        code.snapshot = id
        let realDirectory = (try? FS.realPath(directory)) ?? directory
        return CapturedCode(code: code, cwdInSnapshot: relative(realDirectory, to: top), saveCache: {
            try? FS.atomicWrite(cacheFile, scan.makeCache().encoded(), durable: false)
        })
    }

    /// `path` relative to `base` (`.` when equal), nil when outside it.
    func relative(_ path: String, to base: String) -> String? {
        if path == base { return "." }
        if path.hasPrefix(base + "/") { return String(path.dropFirst(base.count + 1)) }
        return nil
    }
}
