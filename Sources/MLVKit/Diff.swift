import MLVBasics
import MLVModel
import MLVStore

/// One path that differs between two trees.
public struct Change: Sendable, Equatable {
    public enum Kind: String, Sendable { case added, modified, deleted }
    public var kind: Kind
    public var path: String
    public var oldSize: Int64?
    public var newSize: Int64?
}

/// `status`: the working directory against the latest version.
public struct StatusReport: Sendable {
    public var name: String
    public var version: Int
    public var path: String
    public var changes: [Change]
    public var filesHashed: Int
}

extension Repository {
    /// Compares two trees, skipping identical subtrees. `overlay` holds trees not (yet)
    /// in the store.
    func diffTrees(_ a: ObjectID?, _ b: ObjectID?, prefix: String = "", overlay: [ObjectID: Tree] = [:]) throws -> [Change] {
        if a == b { return [] }
        func load(_ id: ObjectID?) throws -> [Tree.Entry] {
            guard let id else { return [] }
            if let t = overlay[id] { return t.entries }
            return try tree(id).entries
        }
        let left = try load(a), right = try load(b)
        var changes: [Change] = []
        var i = 0, j = 0
        func path(_ name: String) -> String { prefix.isEmpty ? name : prefix + "/" + name }
        func all(_ e: Tree.Entry, _ kind: Change.Kind) throws {
            if e.kind == .dir {
                let inside = try diffTrees(kind == .added ? nil : e.id, kind == .added ? e.id : nil, prefix: path(e.name), overlay: overlay)
                // An empty directory is part of a version too: show it as "path/".
                changes += inside.isEmpty ? [Change(kind: kind, path: path(e.name) + "/", oldSize: nil, newSize: nil)] : inside
            } else {
                changes.append(Change(kind: kind, path: path(e.name), oldSize: kind == .deleted ? e.size : nil,
                                      newSize: kind == .added ? e.size : nil))
            }
        }
        while i < left.count || j < right.count {
            if j == right.count || (i < left.count && utf8Less(left[i].name, right[j].name)) {
                try all(left[i], .deleted); i += 1
            } else if i == left.count || utf8Less(right[j].name, left[i].name) {
                try all(right[j], .added); j += 1
            } else {
                let l = left[i], r = right[j]
                if l.kind == .dir && r.kind == .dir {
                    if l.mode != r.mode { changes.append(Change(kind: .modified, path: path(l.name) + "/", oldSize: nil, newSize: nil)) }
                    changes += try diffTrees(l.id, r.id, prefix: path(l.name), overlay: overlay)
                } else if l.kind == .dir || r.kind == .dir {
                    try all(l, .deleted); try all(r, .added)
                } else if l.id != r.id || l.target != r.target || l.mode != r.mode || l.kind != r.kind {
                    changes.append(Change(kind: .modified, path: path(l.name), oldSize: l.size, newSize: r.size))
                }
                i += 1; j += 1
            }
        }
        return changes
    }

    /// File-level differences between two versions.
    public func diff(_ a: String, _ b: String) throws -> (Resolved, Resolved, [Change]) {
        let ra = try resolve(a), rb = try resolve(b)
        return (ra, rb, try diffTrees(try treeID(of: ra), try treeID(of: rb)))
    }

    /// The working directory at `path` (default: where the latest version was added
    /// from) against the latest version of `name`. Reads only files whose stat data
    /// changed since the last add or status.
    public func status(dataset name: String, path: String? = nil) throws -> StatusReport {
        // Only the latest version's manifest is read, however many versions there are.
        guard let head = try wrap({ try refs.latestVersion(kind: Self.datasetKind, name: name) }) else {
            throw MLVError.unknownRef(name, suggestions: try suggestions(for: name))
        }
        let latest = DatasetVersion(name: name, version: head.number, id: head.id, manifest: try datasetManifest(head.id))
        let source = path.map { FS.absolute($0) } ?? (latest.manifest.source.hasPrefix("/")
            ? latest.manifest.source : FS.absolute(latest.manifest.source, relativeTo: root))
        guard FS.exists(source) else { throw MLVError.pathNotFound(path ?? source) }
        let cacheFile = cachePath + "/stat/dataset-\(name)"
        let previous = StatCacheLoad(path: cacheFile)
        let ingest = try Ingest(repository: self, mode: .hashOnly, writer: nil, progress: nil)
        let scan = try ingest.scan(source, previous: previous, reusableRoot: latest.manifest.root)
        let changes = try diffTrees(latest.manifest.root, scan.rootID, overlay: scan.trees)
        // Refresh the cache so the next status is cheap, but only when it still describes
        // the latest version (otherwise add would trust blob ids that are not stored).
        if scan.rootID == latest.manifest.root && (scan.filesHashed > 0 || scan.filesQuickChecked > 0 || previous.value?.source != FS.absolute(source)) {
            try? FS.atomicWrite(cacheFile, scan.makeCache().encoded(), durable: false)
        }
        return StatusReport(name: name, version: latest.version, path: source, changes: changes, filesHashed: scan.filesHashed)
    }
}
