import MLVBasics
import MLVModel
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// What `mlv add dataset` was asked to do.
public struct AddDatasetRequest: Sendable {
    public var name: String
    public var path: String
    public var message: String = ""
    /// `--from REF`, optionally `ROLE=REF` (default role `parent`).
    public var from: [String] = []
    /// `--code PATH`: files snapshotted as this version's code input.
    public var code: [String] = []
    /// `--split NAME=SUBPATH`.
    public var splits: [String: String] = [:]
    public var meta: [String: String] = [:]

    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }
}

/// What `add` did.
public struct AddDatasetResult: Sendable {
    /// The version created, or the latest version when nothing changed.
    public var version: Int
    public var id: ObjectID
    public var created: Bool
    public var files: Int64
    public var bytes: Int64
    /// Bytes written to packs (after compression, with record headers).
    public var newBytesStored: Int
    public var filesHashed: Int
}

/// One version of a dataset, for listings.
public struct DatasetVersion: Sendable {
    public var name: String
    public var version: Int
    public var id: ObjectID
    public var manifest: DatasetManifest
}

/// A ref resolved to a manifest.
public struct Resolved: Sendable {
    public var kind: String
    public var name: String
    public var version: Int
    public var id: ObjectID
    public var split: String?

    public var display: String { "\(name)@v\(version)" + (split.map { "#\($0)" } ?? "") }
    /// `display`, with `model:` in front for models (datasets are the default kind).
    public var kindDisplay: String { kind == "dataset" ? display : "\(kind):\(display)" }
}

/// What `mlv add model` was asked to do.
public struct AddModelRequest: Sendable {
    public var name: String
    public var path: String
    public var message: String = ""
    /// `--from REF`, optionally `ROLE=REF` (default role `parent`), e.g. `train=mnist@v2#train`.
    public var from: [String] = []
    /// `--code PATH`: files snapshotted as this version's code input.
    public var code: [String] = []
    public var meta: [String: String] = [:]

    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }
}

/// The kinds of versioned artifact that are built: their refs live under
/// `refs/<kind>/<name>/`.
public enum ArtifactKind: String, Sendable, CaseIterable {
    case dataset, model
}

extension Repository {
    static let datasetKind = ArtifactKind.dataset.rawValue
    static let modelKind = ArtifactKind.model.rawValue

    /// Versions a file or directory as the next version of a dataset.
    ///
    /// Write order: chunks, trees and the manifest go to new packs, which are fsynced and
    /// indexed; only then is the version ref created. A crash leaves at worst
    /// unreferenced pack files. Nothing is created when the tree, inputs and splits equal
    /// the latest version's.
    /// - Throws: `MLVError` naming the bad name, path or ref; nothing is recorded then.
    public func addDataset(_ request: AddDatasetRequest, progress: Progress? = nil) throws -> AddDatasetResult {
        try addVersion(.dataset, name: request.name, path: request.path, message: request.message, from: request.from,
                       code: request.code, splits: request.splits, meta: request.meta, progress: progress)
    }

    /// Versions a model file or directory as the next version of a model (`mlv.model/1`),
    /// by the same ingest path, write order and "nothing changed" rule as datasets.
    /// - Throws: `MLVError` naming the bad name, path or ref; nothing is recorded then.
    public func addModel(_ request: AddModelRequest, progress: Progress? = nil) throws -> AddDatasetResult {
        try addVersion(.model, name: request.name, path: request.path, message: request.message, from: request.from,
                       code: request.code, splits: [:], meta: request.meta, progress: progress)
    }

    /// Parses `--from ROLE=REF` / `REF` into inputs (`defaultRole` when no role is given).
    func parseInputs(_ from: [String], defaultRole: String = "parent") throws -> [Input] {
        var inputs: [Input] = []
        for spec in from {
            var role = defaultRole, text = spec
            if let eq = spec.firstIndex(of: "="), !spec.hasPrefix("=") {
                role = String(spec[..<eq]); text = String(spec[spec.index(after: eq)...])
                if let p = ArtifactName.problem(with: role) { throw MLVError.invalidName(role, reason: "input role: \(p)") }
            }
            let r = try resolve(text)
            inputs.append(Input(role: role, id: r.id, split: r.split, ref: r.kindDisplay))
        }
        return inputs
    }

    /// The one ingest path for every artifact kind: scan (through the stat cache), store
    /// chunks and trees, write the kind's manifest, commit the packs, then create the
    /// version ref.
    func addVersion(_ kind: ArtifactKind, name: String, path requestPath: String, message: String, from: [String],
                    code: [String], splits requestSplits: [String: String], meta: [String: String],
                    progress: Progress?) throws -> AddDatasetResult {
        try checkVersionRequest(name: name, path: requestPath, splits: requestSplits)
        var inputs = try parseInputs(from)

        let guardLock = try lock(.shared)
        defer { withExtendedLifetime(guardLock) {} }
        let writer = objects.writer()
        do {
            if !code.isEmpty {
                let snapshot = try snapshotCode(code, writer: writer)
                inputs.append(Input(role: "code", id: snapshot.id, ref: snapshot.manifest.paths.joined(separator: ", ")))
            }
            let prepared = try prepareVersion(kind, name: name, path: requestPath, message: message, inputs: inputs,
                                              splits: requestSplits, meta: meta, run: nil, writer: writer, progress: progress)
            if let latest = prepared.unchangedFrom {
                writer.abort()
                prepared.saveCache()
                return prepared.result(version: latest, created: false)
            }
            CrashPoint.hit("add.manifest-written")
            let stored = writer.written.bytes
            try wrap { try writer.commit() }
            CrashPoint.hit("add.committed")
            let version = try createVersionRef(prepared)
            var result = prepared.result(version: version, created: true)
            result.newBytesStored = stored
            return result
        } catch {
            writer.abort()
            throw error
        }
    }

    /// Checks a version request's name, path and splits before anything is read.
    func checkVersionRequest(name: String, path requestPath: String, splits requestSplits: [String: String]) throws {
        if let p = ArtifactName.problem(with: name) { throw MLVError.invalidName(name, reason: p) }
        let path = FS.absolute(requestPath)
        guard FS.exists(path) else { throw MLVError.pathNotFound(requestPath) }
        let real = (try? FS.realPath(path)) ?? path
        if real == storePath || real.hasPrefix(storePath + "/") || path == storePath || path.hasPrefix(storePath + "/") {
            throw MLVError.insideStore(path: requestPath)
        }
        for (split, sub) in requestSplits {
            if let p = ArtifactName.problem(with: split) { throw MLVError.invalidName(split, reason: "split name: \(p)") }
            let clean = sub.split(separator: "/").joined(separator: "/")
            if clean.isEmpty { throw MLVError.invalidArgument("--split \(split)=\(sub): the subpath is empty") }
            if let p = PathRules.problem(withRelativePath: clean) {
                throw MLVError.invalidArgument("--split \(split)=\(sub): \(p)")
            }
        }
    }

    /// A version whose objects and manifest are in a writer, before its ref exists.
    struct PreparedVersion {
        var kind: ArtifactKind
        var name: String
        var id: ObjectID
        /// The latest version, when it already has this content, inputs and splits (nothing
        /// was stored then).
        var unchangedFrom: Int?
        var files: Int64
        var bytes: Int64
        var newBytesStored: Int
        var filesHashed: Int
        var cacheFile: String
        var cache: () -> StatCache

        /// Replaces the stat cache (derived, so not fsynced).
        func saveCache() {
            try? FS.atomicWrite(cacheFile, cache().encoded(), durable: false)
        }

        func result(version: Int, created: Bool) -> AddDatasetResult {
            AddDatasetResult(version: version, id: id, created: created, files: files, bytes: bytes,
                             newBytesStored: created ? newBytesStored : 0, filesHashed: filesHashed)
        }
    }

    /// Scans `path` (through the stat cache), stores chunks, trees and the kind's manifest
    /// in `writer`, and says whether the latest version already has this content. The
    /// caller commits the writer, then calls `createVersionRef`.
    func prepareVersion(_ kind: ArtifactKind, name: String, path requestPath: String, message: String, inputs: [Input],
                        splits requestSplits: [String: String], meta: [String: String], run: String?,
                        writer: PackWriter, progress: Progress?) throws -> PreparedVersion {
        let path = FS.absolute(requestPath)
        let cacheFile = cachePath + "/stat/\(kind.rawValue)-\(name)"
        let previous = StatCacheLoad(path: cacheFile)
        let ingest = try Ingest(repository: self, mode: .store, writer: writer, progress: progress)
        let latest = try wrap { try refs.latestVersion(kind: kind.rawValue, name: name) }
        let latestContent = try latest.map { try artifactContent($0.id) }
        // Reusing the cached root skips building trees, but splits need node ids.
        let scan = try ingest.scan(path, previous: previous,
                                   reusableRoot: requestSplits.isEmpty ? latestContent?.root : nil)

        var splits: [String: Split] = [:]
        for (split, sub) in requestSplits {
            let clean = sub.split(separator: "/").joined(separator: "/")
            guard let node = find(clean, in: scan.root), node.kind == .dir else {
                throw MLVError.invalidArgument("--split \(split)=\(sub): '\(clean)' is not a directory in '\(requestPath)'")
            }
            splits[split] = Split(path: clean, tree: node.id!, files: node.files, bytes: node.size)
        }
        let written = writer.written.bytes
        var prepared = PreparedVersion(kind: kind, name: name, id: latest?.id ?? scan.rootID, unchangedFrom: nil,
                                       files: scan.files, bytes: scan.bytes, newBytesStored: 0,
                                       filesHashed: scan.filesHashed, cacheFile: cacheFile, cache: scan.makeCache)
        if let latest, let content = latestContent,
           content.root == scan.rootID, content.inputs == inputs, content.splits == splits {
            prepared.unchangedFrom = latest.number
            return prepared
        }

        let bytes: [UInt8]
        switch kind {
        case .dataset:
            bytes = DatasetManifest(
                name: name, root: scan.rootID, files: scan.files, bytes: scan.bytes, inputs: inputs,
                splits: splits, message: message, meta: meta, author: try actingIdentity(),
                created: Timestamp.now(), source: displayPath(path), run: run).canonicalBytes()
        case .model:
            bytes = ModelManifest(
                name: name, root: scan.rootID, files: scan.files, bytes: scan.bytes, inputs: inputs,
                message: message, meta: meta, author: try actingIdentity(), created: Timestamp.now(),
                source: displayPath(path), run: run).canonicalBytes()
        }
        let id = SHA256.hash(bytes)
        try wrap { try writer.put(id, kind: .manifest, bytes: bytes, compression: .always) }
        prepared.id = id
        prepared.newBytesStored = writer.written.bytes - written
        return prepared
    }

    /// Creates the next version ref for a prepared version whose objects are committed,
    /// then saves its stat cache.
    /// - Returns: the version number.
    func createVersionRef(_ prepared: PreparedVersion) throws -> Int {
        let version = try wrap { try refs.createNextVersion(kind: prepared.kind.rawValue, name: prepared.name, id: prepared.id) }
        CrashPoint.hit("add.version-created")
        updateLineageIndex()
        prepared.saveCache()
        return version
    }

    /// What any versioned manifest holds in common: its root tree, inputs and splits.
    func artifactContent(_ id: ObjectID) throws -> (root: ObjectID, inputs: [Input], splits: [String: Split]) {
        let json = try manifestJSON(id)
        switch schemaOf(json) {
        case DatasetManifest.schema:
            let m = try wrap { try DatasetManifest(json: json) }
            return (m.root, m.inputs, m.splits)
        case ModelManifest.schema:
            let m = try wrap { try ModelManifest(json: json) }
            return (m.root, m.inputs, [:])
        default:
            throw MLVError.damaged("object \(id.short) is not a dataset or model manifest (schema \(schemaOf(json) ?? "none"))")
        }
    }

    /// Stores the named files as a code snapshot (a tree relative to the repository root).
    func snapshotCode(_ paths: [String], writer: PackWriter) throws -> (id: ObjectID, manifest: CodeManifest) {
        var relPaths: [String] = []
        for p in paths {
            let abs = FS.absolute(p)
            guard let st = try? FS.lstat(abs) else { throw MLVError.pathNotFound(p) }
            guard (st.st_mode & S_IFMT) == S_IFREG else { throw MLVError.invalidArgument("--code '\(p)' is not a regular file") }
            guard abs.hasPrefix(root + "/") else {
                throw MLVError.invalidArgument("--code '\(p)' is outside the repository '\(root)'")
            }
            relPaths.append(String(abs.dropFirst(root.count + 1)))
        }
        // Build nested trees from the relative paths.
        final class Dir { var files: [String: ObjectID] = [:]; var sizes: [String: Int64] = [:]; var modes: [String: UInt32] = [:]; var dirs: [String: Dir] = [:] }
        let top = Dir()
        for rel in Set(relPaths) {
            if let problem = PathRules.problem(withRelativePath: rel) { throw MLVError.unsafePath(path: rel, reason: problem) }
            let bytes: [UInt8]
            do { bytes = try FS.readFile(root + "/" + rel) } catch let e as FileSystemError { throw MLVError.unreadable(path: rel, cause: e) }
            let blob = try storeBlob(bytes, writer: writer)
            var dir = top
            let parts = rel.split(separator: "/").map(String.init)
            for part in parts.dropLast() {
                if dir.dirs[part] == nil { dir.dirs[part] = Dir() }
                dir = dir.dirs[part]!
            }
            let st = try? FS.lstat(root + "/" + rel)
            dir.files[parts.last!] = blob
            dir.sizes[parts.last!] = Int64(bytes.count)
            dir.modes[parts.last!] = UInt32((st?.st_mode ?? 0o644) & 0o7777)
        }
        func store(_ d: Dir) throws -> (ObjectID, Int64) {
            var entries: [Tree.Entry] = []
            for (name, id) in d.files {
                entries.append(Tree.Entry(name: name, kind: .file, mode: d.modes[name]!, size: d.sizes[name]!, id: id))
            }
            for (name, sub) in d.dirs {
                let (id, size) = try store(sub)
                entries.append(Tree.Entry(name: name, kind: .dir, mode: 0o755, size: size, id: id))
            }
            let tree = Tree(entries: entries)
            let bytes = tree.canonicalBytes()
            let id = SHA256.hash(bytes)
            try wrap { try writer.put(id, kind: .tree, bytes: bytes, compression: .always) }
            return (id, tree.totalSize)
        }
        let (rootTree, _) = try store(top)
        let manifest = CodeManifest(root: rootTree, paths: relPaths)
        let bytes = manifest.json.canonicalBytes()
        let id = SHA256.hash(bytes)
        try wrap { try writer.put(id, kind: .manifest, bytes: bytes, compression: .always) }
        return (id, manifest)
    }

    /// Stores one in-memory blob (chunked like any file) and returns its id.
    func storeBlob(_ bytes: [UInt8], writer: PackWriter) throws -> ObjectID {
        try bytes.withUnsafeBytes { try storeBlob($0, writer: writer) }
    }

    /// Stores bytes as one blob, chunked like any file (by the ingest path: a large blob is
    /// hashed and stored by two workers, window by window, its pages dropped once chunked),
    /// and returns its id.
    func storeBlob(_ data: UnsafeRawBufferPointer, writer: PackWriter) throws -> ObjectID {
        guard !data.isEmpty else {
            let blob = SHA256.hash(data)
            try wrap { try writer.put(blob, kind: .chunk, bytes: data, compression: .never) }
            return blob
        }
        return try Ingest(repository: self, mode: .store, writer: writer, progress: nil).storeChunked(data, writer: writer).0
    }

    private func find(_ path: String, in root: Ingest.Node) -> Ingest.Node? {
        var node = root
        for part in path.split(separator: "/") {
            guard let child = node.children.first(where: { $0.name == part }) else { return nil }
            node = child
        }
        return node
    }

    /// `path` relative to the repository root when inside it, else absolute.
    func displayPath(_ absolute: String) -> String {
        if absolute == root { return "." }
        if absolute.hasPrefix(root + "/") { return String(absolute.dropFirst(root.count + 1)) }
        return absolute
    }

    // MARK: listing

    /// Every version of a dataset, oldest first.
    public func versions(of name: String) throws -> [DatasetVersion] {
        try wrap { try refs.versions(kind: Self.datasetKind, name: name) }.map { v in
            DatasetVersion(name: name, version: v.number, id: v.id, manifest: try datasetManifest(v.id))
        }
    }

    /// Every dataset's latest version, by name.
    public func datasets() throws -> [DatasetVersion] {
        try wrap { try refs.names(kind: Self.datasetKind) }.compactMap { name in
            guard let last = try wrap({ try refs.latestVersion(kind: Self.datasetKind, name: name) }) else { return nil }
            return DatasetVersion(name: name, version: last.number, id: last.id, manifest: try datasetManifest(last.id))
        }
    }

    // MARK: resolving

    /// Resolves `NAME@vN`, `NAME@ALIAS`, `NAME@STAGE` (models), `NAME` (latest),
    /// `KIND:NAME@..`, `..#SPLIT`, or a unique hex prefix of a manifest id. Without a
    /// kind, the name must belong to one kind only.
    /// - Throws: `MLVError.unknownRef` with close names, `.ambiguousPrefix`, `.ambiguousRef`,
    ///   `.unknownSplit`.
    public func resolve(_ text: String) throws -> Resolved {
        var allNames = Set<String>()
        for k in ArtifactKind.allCases { allNames.formUnion(try wrap { try refs.names(kind: k.rawValue) }) }
        if RefSpec.isIDPrefix(text) && !allNames.contains(text) {
            return try resolvePrefix(text)
        }
        let spec: RefSpec
        do { spec = try RefSpec.parse(text) } catch let e as ModelError { throw MLVError.invalidArgument(e.message) }
        let kind: String
        if let k = spec.kind {
            guard ArtifactKind(rawValue: k) != nil else { throw MLVError.unknownRef(text, suggestions: []) }
            kind = k
        } else {
            let kinds = try ArtifactKind.allCases.filter { k in
                !(try wrap { try refs.versions(kind: k.rawValue, name: spec.name) }).isEmpty
            }
            if kinds.count > 1 {
                throw MLVError.ambiguousRef(text, candidates: kinds.map { "\($0.rawValue):\(text)" })
            }
            kind = kinds.first?.rawValue ?? Self.datasetKind
        }
        let all = try wrap { try refs.versions(kind: kind, name: spec.name) }
        guard !all.isEmpty else {
            throw MLVError.unknownRef(text, suggestions: try suggestions(for: spec.name))
        }
        var found: (number: Int, id: ObjectID)?
        switch spec.selector {
        case .version(let n):
            found = all.first { $0.number == n }
            if found == nil {
                throw MLVError.unknownRef(text, suggestions: ["\(spec.name)@v1 ... \(spec.name)@v\(all.last!.number)"])
            }
        case .alias("latest"):
            found = all.last
        case .alias(let alias) where kind == Self.modelKind:
            found = try resolveRegistryName(model: spec.name, alias, text: text, versions: all)
        case .alias(let alias):
            guard let id = try wrap({ try refs.alias(kind: kind, name: spec.name, alias: alias) }),
                  let v = all.first(where: { $0.id == id }) else {
                let known = try wrap { try refs.aliases(kind: kind, name: spec.name) }.keys.sorted()
                throw MLVError.unknownRef(text, suggestions: (["latest"] + known).map { "\(spec.name)@\($0)" })
            }
            found = v
        }
        var resolved = Resolved(kind: kind, name: spec.name, version: found!.number, id: found!.id, split: nil)
        if let split = spec.split {
            let content = try artifactContent(resolved.id)
            guard content.splits[split] != nil else {
                throw MLVError.unknownSplit(ref: resolved.display, split: split, known: content.splits.keys.sorted())
            }
            resolved.split = split
        }
        return resolved
    }

    /// `model@STAGE` or `model@ALIAS`, from the registry's head event.
    private func resolveRegistryName(model: String, _ name: String, text: String,
                                     versions: [(number: Int, id: ObjectID)]) throws -> (number: Int, id: ObjectID) {
        let state = try registryHead(model: model)?.event.state ?? RegistryState()
        var holder: Holder?
        if let a = state.aliases[name] {
            holder = a
        } else if let holders = state.stages[name], !holders.isEmpty {
            guard holders.count == 1 else {
                throw MLVError.invalidArgument("\(model)@\(name) is held by \(holders.map { "v\($0.version)" }.joined(separator: ", ")); name one version")
            }
            holder = holders[0]
        }
        guard let holder, let v = versions.first(where: { $0.number == holder.version && $0.id == holder.id }) else {
            let stages = (try? stageConfig().stages.keys.sorted()) ?? []
            if stages.contains(name) {
                throw MLVError.notFound("no version of \(model) holds stage '\(name)' (in '\(text)')")
            }
            let known = ["latest"] + state.aliases.keys.sorted() + state.stages.filter { !$0.value.isEmpty }.keys.sorted()
            throw MLVError.unknownRef(text, suggestions: known.map { "\(model)@\($0)" })
        }
        return v
    }

    private func resolvePrefix(_ prefix: String) throws -> Resolved {
        var matches: [Resolved] = []
        for kind in ArtifactKind.allCases.map(\.rawValue) {
            for name in try wrap({ try refs.names(kind: kind) }) {
                for v in try wrap({ try refs.versions(kind: kind, name: name) }) where v.id.hasHexPrefix(prefix) {
                    matches.append(Resolved(kind: kind, name: name, version: v.number, id: v.id, split: nil))
                }
            }
        }
        let distinct = Set(matches.map(\.id))
        if distinct.count > 1 {
            throw MLVError.ambiguousPrefix(prefix, candidates: matches.map { "\($0.id.short) (\($0.display))" })
        }
        guard let first = matches.first else { throw MLVError.unknownRef(prefix, suggestions: []) }
        return first
    }

    /// Artifact names (of any kind) within a small edit distance of `name`.
    func suggestions(for name: String, kinds: [ArtifactKind] = ArtifactKind.allCases) throws -> [String] {
        var names = Set<String>()
        for k in kinds { names.formUnion(try wrap { try refs.names(kind: k.rawValue) }) }
        return names.sorted().map { ($0, editDistance($0, name)) }
            .filter { $0.1 <= max(2, name.count / 3) || $0.0.hasPrefix(name) || name.hasPrefix($0.0) }
            .sorted { $0.1 < $1.1 }
            .prefix(3).map(\.0)
    }

    /// The tree a resolved ref (and optional subpath) stands for.
    public func treeID(of resolved: Resolved, subpath: String? = nil) throws -> ObjectID {
        let manifest = try artifactContent(resolved.id)
        var id = manifest.root
        var prefix = ""
        if let split = resolved.split, let s = manifest.splits[split] {
            id = s.tree
            prefix = s.path
        }
        guard let sub = subpath?.split(separator: "/").joined(separator: "/"), !sub.isEmpty else { return id }
        for part in sub.split(separator: "/") {
            let tree = try tree(id)
            guard let entry = tree.entries.first(where: { $0.name == part }), entry.kind == .dir, let next = entry.id else {
                throw MLVError.notInVersion(ref: resolved.display, path: prefix.isEmpty ? sub : prefix + "/" + sub)
            }
            id = next
        }
        return id
    }
}

/// Levenshtein distance, for "did you mean".
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var row = Array(0...b.count)
    for i in 1...a.count {
        var previous = row[0]
        row[0] = i
        for j in 1...b.count {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return row[b.count]
}
