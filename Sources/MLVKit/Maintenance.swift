import MLVBasics
import MLVModel
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// One finding of `fsck`.
public struct Problem: Sendable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }
    public var severity: Severity
    /// The ref path, object id or file involved.
    public var subject: String
    public var message: String
    public var description: String { "\(severity.rawValue): \(subject): \(message)" }
}

public struct FsckReport: Sendable {
    public var refs = 0
    public var manifests = 0
    public var trees = 0
    public var blobs = 0
    public var chunksVerified = 0
    public var problems: [Problem] = []
    public var isClean: Bool { !problems.contains { $0.severity == .error } }
}

public struct GCReport: Sendable {
    public var reachable = 0
    public var packsRemoved: [String] = []
    public var packsRewritten: [String] = []
    /// Small, fully live packs (one per registry change, say) merged into one.
    public var packsMerged: [String] = []
    public var objectsRemoved = 0
    public var bytesFreed: Int64 = 0
    public var temporaryFilesRemoved = 0
    public var keptForGrace = 0
    /// Run log chunks `mlv run` stored raw for want of CPU time, compressed now (with
    /// `dryRun`: to be tried), and the bytes that saved.
    public var chunksCompressed = 0
    public var bytesSavedByCompression: Int64 = 0
    public var dryRun = false
}

extension Repository {
    /// A pack below this many bytes is small; `smallPacksToMerge` or more of them (past
    /// the grace period) are merged into one by gc.
    static let smallPackBytes = 1 << 20
    static let smallPacksToMerge = 16

    /// Everything reachable from refs: manifests, trees, blobs and chunks, by id; for
    /// models also every registry event back to the first and the versions they name.
    /// Missing or damaged objects are reported, never skipped silently.
    func reachable(full: Bool, report: inout FsckReport) -> Set<ObjectID> {
        var seen = Set<ObjectID>()
        // Visited per role, not just per id: an id reached once as a tree and again from a
        // ref (which needs a manifest) or a file entry (which needs a blob) must be checked
        // for each role, or a ref naming a tree would pass unnoticed.
        var blobsVisited = Set<ObjectID>(), treesVisited = Set<ObjectID>(), manifestsVisited = Set<ObjectID>()
        func problem(_ subject: String, _ message: String) {
            report.problems.append(Problem(severity: .error, subject: subject, message: message))
        }
        // After a lazy pull, chunks stay on the remote: an object missing here that a
        // remote's (cached) pack index lists is a warning, not damage.
        let remoteIndexes = cachedRemoteIndexes()
        func missing(_ id: ObjectID, _ message: String) {
            if let remote = remoteIndexes.first(where: { $0.1.find(id) != nil })?.0 {
                report.problems.append(Problem(severity: .warning, subject: id.hex, message: message + "; it is on remote \(remote) (a lazy pull), and a checkout fetches it"))
            } else {
                problem(id.hex, message)
            }
        }
        func blob(_ id: ObjectID, _ where_: String) {
            guard blobsVisited.insert(id).inserted else { return }
            seen.insert(id)
            report.blobs += 1
            guard let info = objects.info(id) else { missing(id, "blob missing (file \(where_))"); return }
            if info.kind == .chunkList {
                do {
                    let (_, list) = try objects.read(id)
                    var complete = true
                    for c in try ChunkList.decode(list, blob: id) {
                        seen.insert(c.id)
                        guard let ci = objects.info(c.id) else {
                            missing(c.id, "chunk of blob \(id.short) (file \(where_)) is missing")
                            complete = false
                            continue
                        }
                        guard ci.kind == .chunk, ci.size == c.length else {
                            problem(c.id.hex, "chunk of blob \(id.short) (file \(where_)) has the wrong kind or size")
                            continue
                        }
                    }
                    if full && complete {
                        try readBlob(id) { _ in }
                        report.chunksVerified += 1
                    }
                } catch { problem(id.hex, "\(error) (file \(where_))") }
            } else if info.kind == .chunk {
                if full {
                    do { _ = try objects.read(id); report.chunksVerified += 1 } catch { problem(id.hex, "\(error) (file \(where_))") }
                }
            } else {
                problem(id.hex, "expected a blob for file \(where_), found a \(info.kind)")
            }
        }
        func tree(_ id: ObjectID, _ where_: String) {
            guard treesVisited.insert(id).inserted else { return }
            seen.insert(id)
            report.trees += 1
            do {
                for e in try self.tree(id).entries {
                    let path = where_.isEmpty ? e.name : where_ + "/" + e.name
                    switch e.kind {
                    case .dir: tree(e.id!, path)
                    case .file: blob(e.id!, path)
                    case .symlink: break
                    }
                }
            } catch { problem(id.hex, "tree at '\(where_.isEmpty ? "/" : where_)': \(error)") }
        }
        func manifest(_ id: ObjectID, _ ref: String) {
            guard manifestsVisited.insert(id).inserted else { return }
            seen.insert(id)
            report.manifests += 1
            do {
                let json = try manifestJSON(id)
                switch schemaOf(json) {
                case DatasetManifest.schema:
                    let m = try wrap { try DatasetManifest(json: json) }
                    tree(m.root, "")
                    for s in m.splits.values { tree(s.tree, s.path) }
                    for input in m.inputs { manifest(input.id, "input of \(ref)") }
                case CodeManifest.schema:
                    let m = try wrap { try CodeManifest(json: json) }
                    tree(m.root, "")
                case ModelManifest.schema:
                    let m = try wrap { try ModelManifest(json: json) }
                    tree(m.root, "")
                    for input in m.inputs { manifest(input.id, "input of \(ref)") }
                case RunManifest.schema:
                    let m = try wrap { try RunManifest(json: json) }
                    for b in m.referencedBlobs { blob(b, "of run \(m.run)") }
                    for input in m.referencedManifests { manifest(input, "run \(m.run)") }
                case Event.schema:
                    // A registry event reaches the version it names, every holder in its
                    // state, and the previous event of its chain.
                    let e = try wrap { try Event(json: json) }
                    manifest(e.id, "event seq \(e.seq) of \(e.model)")
                    for h in e.state.stages.values.joined() { manifest(h.id, "event seq \(e.seq) of \(e.model)") }
                    for h in e.state.aliases.values { manifest(h.id, "event seq \(e.seq) of \(e.model)") }
                    if let p = e.previous { manifest(p, "previous of event seq \(e.seq) of \(e.model)") }
                case TaintEvent.schema:
                    // A taint event reaches every tainted version and the previous event.
                    let e = try wrap { try TaintEvent(json: json) }
                    manifest(e.id, "taint event seq \(e.seq)")
                    for t in e.state.values { manifest(t.id, "taint event seq \(e.seq)") }
                    if let p = e.previous { manifest(p, "previous of taint event seq \(e.seq)") }
                default:
                    problem(id.hex, "manifest of \(ref) has unknown schema \(schemaOf(json) ?? "none")")
                }
            } catch { problem(id.hex, "manifest of \(ref): \(error)") }
        }
        do {
            for (path, result) in try refs.allRefs() {
                report.refs += 1
                let name = displayPath(path)
                switch result {
                case .success(let id): manifest(id, name)
                case .failure(let e): problem(name, e.description)
                }
            }
        } catch { problem(storePath + "/refs", "\(error)") }
        // A run in progress committed its code snapshot and diff before it started; they
        // are live until the run is recorded (or its active directory is removed).
        for entry in (try? FS.listDirectory(storePath + "/active")) ?? [] {
            guard let bytes = try? FS.readFileIfExists(storePath + "/active/" + entry.name + "/state"),
                  let state = try? JSON.parse(bytes) else { continue }
            if let hex = state["code"]?.string, let id = ObjectID(hex: hex) { manifest(id, "active run \(entry.name)") }
            if let hex = state["diff"]?.string, let id = ObjectID(hex: hex) { blob(id, "diff of active run \(entry.name)") }
        }
        return seen
    }

    /// Checks every ref, manifest, tree and blob; with `full`, re-reads and re-hashes
    /// every chunk and checks every pack's checksum.
    public func fsck(full: Bool = false) -> FsckReport {
        var report = FsckReport()
        // Indexes are checked when the store opens; check each again by itself so one
        // bad index does not hide the others, and look for leftovers.
        if let entries = try? FS.listDirectory(packsPath) {
            let names = Set(entries.map(\.name))
            for name in names.sorted() {
                if name.hasSuffix(".idx") {
                    let base = String(name.dropLast(4))
                    do {
                        let index = try PackIndex(indexPath: packsPath + "/" + name, packPath: packsPath + "/" + base + ".pack",
                                                  name: String(base.dropFirst(5)))
                        if !names.contains(base + ".pack") {
                            report.problems.append(Problem(severity: .error, subject: name, message: "index without its pack file"))
                        } else if full {
                            let pack = try MappedFile(path: index.packPath)
                            if XXHash.xxh3_64(pack.bytes) != index.packChecksum {
                                report.problems.append(Problem(severity: .error, subject: base + ".pack", message: "pack checksum mismatch"))
                                // Name each damaged record, reachable or not.
                                for (entry, error) in (try? objects.damagedRecords(index)) ?? [] {
                                    report.problems.append(Problem(severity: .error, subject: entry.id.hex,
                                                                   message: "\(entry.kind) record in \(base).pack: \(error)"))
                                }
                            }
                        }
                    } catch {
                        report.problems.append(Problem(severity: .error, subject: name, message: "\(error)"))
                    }
                } else if name.hasSuffix(".pack"), !names.contains(String(name.dropLast(5)) + ".idx") {
                    report.problems.append(Problem(severity: .warning, subject: name,
                                                   message: "pack without an index (an interrupted write); gc removes it after the grace period"))
                } else if name.hasPrefix(".") {
                    report.problems.append(Problem(severity: .warning, subject: name, message: "temporary file; gc removes it after the grace period"))
                }
            }
        }
        for name in ((try? FS.listDirectory(damagedPath)) ?? []).map(\.name).sorted() {
            report.problems.append(Problem(severity: .warning, subject: ".mlv/damaged/" + name,
                                           message: "moved aside by 'mlv fsck --repair'; remove it once you no longer need it"))
        }
        _ = reachable(full: full, report: &report)
        return report
    }

    /// Removes objects no ref reaches. Packs younger than `graceSeconds` are left alone
    /// (an add running right now may be about to refer to them); packs with no live
    /// object are deleted, packs with some are rewritten with only the live ones.
    /// Refuses to delete anything when the reachability walk found damage.
    /// - Throws: `MLVError.damaged` when fsck-level damage makes the live set uncertain.
    public func gc(graceSeconds: Int64, dryRun: Bool) throws -> GCReport {
        let exclusive = try lock(.exclusive)
        defer { withExtendedLifetime(exclusive) {} }
        var check = FsckReport()
        let live = reachable(full: false, report: &check)
        if !check.isClean {
            throw MLVError.damaged("gc refused: the store has damage (\(check.problems.first!.description)); run 'mlv fsck'")
        }
        var report = GCReport(reachable: live.count, dryRun: dryRun)
        let now = Int64(time(nil))
        func old(_ path: String) -> Bool {
            guard let st = try? FS.lstat(path) else { return false }
            return now - Int64(st.st_mtim.tv_sec) >= graceSeconds
        }
        var rewrite: [(PackIndex, [IndexEntry])] = []
        var small: [(PackIndex, [IndexEntry])] = []
        for index in objects.packIndexes {
            let entries = index.entries
            let keep = entries.filter { live.contains($0.id) }
            if keep.count == entries.count {
                // Every registry change writes a small pack of its own; many of them are
                // merged into one so opening the store stays cheap.
                let size = entries.reduce(0) { $0 + $1.storedLength + PackFormat.recordHeaderSize }
                if size < Self.smallPackBytes && old(index.packPath) { small.append((index, keep)) }
                continue
            }
            if !old(index.packPath) { report.keptForGrace += 1; continue }
            report.objectsRemoved += entries.count - keep.count
            report.bytesFreed += Int64(entries.filter { !live.contains($0.id) }.reduce(0) { $0 + $1.storedLength + PackFormat.recordHeaderSize })
            if keep.isEmpty { report.packsRemoved.append(index.name) } else { report.packsRewritten.append(index.name) }
            rewrite.append((index, keep))
        }
        if small.count >= Self.smallPacksToMerge {
            report.packsMerged = small.map(\.0.name)
            rewrite += small
        }
        // Run log chunks stored raw for want of CPU time (`deferred-compression`): their
        // packs are rewritten with those chunks compressed (packs within the grace
        // period wait for a later gc).
        var compress = Set<ObjectID>(), laterCompress = Set<ObjectID>()
        let deferred = deferredCompression().intersection(live)
        if !deferred.isEmpty {
            let rewriting = Set(rewrite.map(\.0.name))
            for index in objects.packIndexes {
                let raw = index.entries.filter { deferred.contains($0.id) && !$0.isCompressed }.map(\.id)
                if raw.isEmpty { continue }
                guard old(index.packPath) else { laterCompress.formUnion(raw); continue }
                compress.formUnion(raw)
                if !rewriting.contains(index.name) { rewrite.append((index, index.entries.filter { live.contains($0.id) })) }
            }
            report.chunksCompressed = compress.count
        }
        // Leftovers of interrupted writes.
        var leftovers: [String] = []
        for e in (try? FS.listDirectory(packsPath)) ?? [] {
            let path = packsPath + "/" + e.name
            let orphanPack = e.name.hasSuffix(".pack") && !FS.exists(String(path.dropLast(5)) + ".idx")
            if (e.name.hasPrefix(".") || e.name.hasSuffix(".idx.tmp") || orphanPack) && old(path) { leftovers.append(path) }
        }
        report.temporaryFilesRemoved = leftovers.count
        if dryRun { return report }
        // Leftovers go first: the repack below may write a pack under the very name of a
        // leftover (an earlier gc that failed before indexing it), and deleting the
        // leftover after that would delete the new, live pack.
        for path in leftovers { try? FS.unlink(path) }

        // Copy live objects out first and commit them, then delete the old packs: a crash
        // in between leaves duplicates, never a loss.
        let writer = objects.writer()
        do {
            for (index, keep) in rewrite where !keep.isEmpty {
                for e in keep {
                    let bytes = try wrap { try objects.readRecordForRepack(index, e) }
                    var entry = e, stored = bytes
                    if compress.contains(e.id), !e.isCompressed, let packed = Self.compressDeferred(bytes) {
                        report.bytesSavedByCompression += Int64(bytes.count - packed.count)
                        entry.storedLength = packed.count
                        entry.flags |= PackFormat.flagCompressed
                        stored = packed
                    }
                    try stored.withUnsafeBytes { raw in
                        try wrap { try writer.putStored(entry, stored: raw) }
                    }
                }
            }
            try wrap { try writer.commit() }
        } catch {
            writer.abort()
            throw error
        }
        CrashPoint.hit("gc.repacked")
        objects.closeDescriptors()
        for (index, _) in rewrite {
            try wrap {
                try FS.unlink(index.indexPath)
                CrashPoint.hit("gc.index-deleted")
                try FS.unlink(index.packPath)
                CrashPoint.hit("gc.pack-deleted")
            }
        }
        try wrap { try FS.fsyncDirectory(packsPath) }
        try wrap { try objects.reload() }
        if !deferred.isEmpty || FS.exists(deferredCompressionPath) { setDeferredCompression(laterCompress) }
        return report
    }
}

/// Parses a grace period: `0`, `30m`, `12h`, `3d`, `2w` (seconds when no unit).
public func parseDuration(_ text: String) -> Int64? {
    guard let last = text.last else { return nil }
    let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800]
    if let unit = units[last], let n = Int64(text.dropLast()), n >= 0 { return n * unit }
    if let n = Int64(text), n >= 0 { return n }
    return nil
}
