import MLVBasics
import MLVModel
import MLVRemote
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// The object ids one object names: a manifest's trees and inputs, an event's versions
/// and previous event, a tree's entries, a chunk list's chunks. The same edges fsck and
/// gc walk.
func objectChildren(_ id: ObjectID, kind: ObjectKind, bytes: [UInt8]) throws -> [ObjectID] {
    switch kind {
    case .chunk:
        return []
    case .chunkList:
        return try ChunkList.decode(bytes, blob: id).map(\.id)
    case .tree:
        do { return try Tree.decode(bytes).entries.compactMap(\.id) }
        catch { throw MLVError.damaged("tree \(id.short): \(error)") }
    case .manifest:
        let json = try wrap { try JSON.parse(bytes) }
        switch schemaOf(json) {
        case DatasetManifest.schema:
            let m = try wrap { try DatasetManifest(json: json) }
            return [m.root] + m.splits.keys.sorted().map { m.splits[$0]!.tree } + m.inputs.map(\.id)
        case ModelManifest.schema:
            let m = try wrap { try ModelManifest(json: json) }
            return [m.root] + m.inputs.map(\.id)
        case CodeManifest.schema:
            return [try wrap { try CodeManifest(json: json) }.root]
        case Event.schema:
            let e = try wrap { try Event(json: json) }
            return [e.id] + e.state.stages.values.joined().map(\.id) + e.state.aliases.values.map(\.id) + (e.previous.map { [$0] } ?? [])
        default:
            throw MLVError.damaged("manifest \(id.short) has unknown schema \(schemaOf(json) ?? "none")")
        }
    }
}

/// The pack indexes of one remote, cached under `.mlv/remotes/<name>/packs/<pack>.idx`.
/// Packs are content-named and never change, so an index is downloaded once; its name is
/// checked against the SHA-256 of its bytes before it is cached.
final class RemotePacks: @unchecked Sendable {
    let indexes: [PackIndex]
    /// Sizes of the pack data files present, by pack name (an index may be missing: an
    /// interrupted push).
    let packSizes: [String: Int64]
    /// Index files that failed their checks, with why (reported, never used).
    let damaged: [String]

    /// Lists `packs/` on the remote and loads every index, downloading the new ones.
    /// - Throws: `.remote` when the listing or a download fails.
    init(remote: any Remote, cache: String, jobs: Int) throws {
        let listing = try remoteCall { try remote.list(prefix: "packs/") }
        var sizes: [String: Int64] = [:]
        var names: [String] = []
        for e in listing {
            let file = String(e.key.dropFirst("packs/".count))
            guard let dot = file.firstIndex(of: "."), Hex.isLowerHex(file[..<dot]), file[..<dot].utf8.count == 64 else { continue }
            let name = String(file[..<dot])
            switch file[dot...] {
            case ".pack": sizes[name] = e.size
            case ".idx": names.append(name)
            default: break
            }
        }
        packSizes = sizes
        try wrap { try FS.makeDirectories(cache) }
        let loaded = Locked<[String: PackIndex]>([:])
        let bad = Locked<[String]>([])
        try Parallel.forEach(names.count, workers: max(1, jobs)) { i in
            let name = names[i]
            let path = cache + "/" + name + ".idx"
            if !FS.exists(path) {
                guard let object = try remoteCall({ try remote.get("packs/\(name).idx") }) else { return }
                let b = object.bytes
                guard b.count >= PackFormat.indexHeaderSize + PackFormat.indexTrailerSize,
                      SHA256.hash(Array(b[0..<(b.count - 8)])).hex == name else {
                    bad.withLock { $0.append("packs/\(name).idx: its bytes do not match its name") }
                    return
                }
                try wrap { try FS.atomicWrite(path, b, durable: false) }
            }
            do {
                let index = try PackIndex(indexPath: path, packPath: "packs/\(name).pack", name: name)
                loaded.withLock { $0[name] = index }
            } catch {
                try? FS.unlink(path)
                bad.withLock { $0.append("packs/\(name).idx: \(error)") }
            }
        }
        let all = loaded.withLock { $0 }
        indexes = all.keys.sorted().map { all[$0]! }
        damaged = bad.withLock { $0 }.sorted()
    }

    /// Every pack holding `id`, with its entry.
    func locate(_ id: ObjectID) -> [(PackIndex, IndexEntry)] {
        indexes.compactMap { i in i.find(id).map { (i, $0) } }
    }

    func contains(_ id: ObjectID) -> Bool { indexes.contains { $0.find(id) != nil } }
}

/// What a receive stored and what it could not.
struct Received {
    var objects = 0
    var bytes: Int64 = 0
    /// Objects the remote holds damaged (each tried copy), by id, with why. Not stored.
    var corrupt: [ObjectID: String] = [:]
    /// Objects neither here nor on the remote.
    var missing: Set<ObjectID> = []
}

extension Repository {

    /// Downloads every object reachable from `roots` that is not stored here, verifying
    /// each by hash before it is stored. With `metadataOnly`, chunks stay on the remote
    /// (a lazy pull or a fetch): manifests, events, trees and chunk lists come.
    ///
    /// Walks the graph a layer at a time; per layer and per remote pack, it reads the
    /// records it needs by range, or the whole pack when it needs most of it. A record
    /// that fails its checks is retried from another pack holding the same id; one that
    /// fails everywhere is reported in `corrupt` and not stored. Chunk lists are stored
    /// only after their chunks arrived and the reassembled blob hashed to the list's id
    /// (with `metadataOnly`, they are checked when a checkout reassembles the blob).
    func receive(_ roots: [ObjectID], from remote: any Remote, packs: RemotePacks, metadataOnly: Bool,
                 jobs: Int, progress: Progress? = nil) throws -> Received {
        var result = Received()
        var seen = Set<ObjectID>()
        var layer = roots
        var lists: [(IndexEntry, [UInt8], [(id: ObjectID, length: Int)])] = []
        let writer = objects.writer()
        do {
            while !layer.isEmpty {
                var next: [ObjectID] = []
                var wanted: [ObjectID] = []
                for id in layer where seen.insert(id).inserted {
                    // `locate`, not `info`: a miss is the common case here and must not
                    // re-list the packs directory.
                    if let (_, local) = objects.locate(id) {
                        if local.kind == .chunk { continue }
                        let (kind, bytes) = try wrap { try local.kind == .chunkList ? objects.readUnverified(id) : objects.read(id) }
                        next += try objectChildren(id, kind: kind, bytes: bytes)
                        continue
                    }
                    let copies = packs.locate(id)
                    guard let first = copies.first else { result.missing.insert(id); continue }
                    if metadataOnly && first.1.kind == .chunk { continue }
                    wanted.append(id)
                }
                let got = try download(wanted, from: remote, packs: packs, jobs: jobs, progress: progress) { entry, stored, raw in
                    if entry.kind == .chunkList {
                        // Stored after its chunks verify the blob, below.
                        return .hold(try ChunkList.decode(raw, blob: entry.id))
                    }
                    try stored.withUnsafeBytes { raw in try wrap { try writer.putStored(entry, stored: raw) } }
                    return .stored(try objectChildren(entry.id, kind: entry.kind, bytes: raw))
                }
                result.corrupt.merge(got.corrupt) { a, _ in a }
                result.objects += got.objects
                result.bytes += got.bytes
                for (entry, stored, list) in got.held {
                    lists.append((entry, stored, list))
                    if !metadataOnly { next += list.map { $0.id } }
                }
                next += got.children
                layer = next
            }
            try wrap { try writer.commit() }
        } catch {
            writer.abort()
            throw error
        }
        // Chunk lists last: each is checked by reassembling its blob from stored chunks.
        guard !lists.isEmpty else { return result }
        let listWriter = objects.writer()
        do {
            for (entry, stored, list) in lists {
                if !metadataOnly {
                    var hasher = SHA256()
                    var ok = true
                    for c in list {
                        guard let (kind, bytes) = try? objects.readUnverified(c.id), kind == .chunk, bytes.count == c.length else {
                            ok = false; break
                        }
                        hasher.update(bytes)
                    }
                    guard ok, hasher.finalize() == entry.id else {
                        result.corrupt[entry.id] = "chunk list does not reassemble to its blob"
                        continue
                    }
                }
                try stored.withUnsafeBytes { raw in try wrap { try listWriter.putStored(entry, stored: raw) } }
            }
            try wrap { try listWriter.commit() }
        } catch {
            listWriter.abort()
            throw error
        }
        return result
    }

    enum Taken {
        case stored([ObjectID])
        case hold([(id: ObjectID, length: Int)])
    }

    struct Downloaded {
        var objects = 0
        var bytes: Int64 = 0
        var children: [ObjectID] = []
        var held: [(IndexEntry, [UInt8], [(id: ObjectID, length: Int)])] = []
        var corrupt: [ObjectID: String] = [:]
    }

    /// Fetches the records of `ids` from the remote's packs, checks each (header, checksum,
    /// decompression, SHA-256) and hands the good ones to `take`. A bad copy is retried
    /// from the next pack that holds the id.
    private func download(_ ids: [ObjectID], from remote: any Remote, packs: RemotePacks, jobs: Int, progress: Progress?,
                          take: @escaping (IndexEntry, [UInt8], [UInt8]) throws -> Taken) throws -> Downloaded {
        let out = Locked(Downloaded())
        var pending = ids
        var attempt = 0
        while !pending.isEmpty {
            var byPack: [String: (PackIndex, [IndexEntry])] = [:]
            var failedEverywhere: [ObjectID] = []
            for id in pending {
                let copies = packs.locate(id)
                guard attempt < copies.count else { failedEverywhere.append(id); continue }
                let (index, entry) = copies[attempt]
                byPack[index.name, default: (index, [])].1.append(entry)
            }
            for id in failedEverywhere where out.withLock({ $0.corrupt[id] == nil }) {
                out.withLock { $0.corrupt[id] = "no copy on the remote" }
            }
            let failed = Locked<[ObjectID]>([])
            // A record the index places past the end of its pack (or in a pack whose data
            // is not there) is never requested: a hostile index cannot make mlv allocate
            // for bytes that do not exist.
            for (name, (_, entries)) in byPack {
                let size = packs.packSizes[name] ?? 0
                for e in entries where Int64(e.offset + PackFormat.recordHeaderSize + e.storedLength) > size {
                    out.withLock { $0.corrupt[e.id] = size == 0 ? "packs/\(name).pack is missing" : "index of packs/\(name).pack points past its end" }
                    failed.withLock { $0.append(e.id) }
                }
                byPack[name]!.1 = entries.filter { Int64($0.offset + PackFormat.recordHeaderSize + $0.storedLength) <= size }
            }
            let work = byPack.keys.sorted().map { byPack[$0]! }.filter { !$0.1.isEmpty }
            try Parallel.forEach(work.count, workers: max(1, jobs)) { i in
                let (index, entries) = work[i]
                try self.readRecords(entries.sorted { $0.offset < $1.offset }, of: index, from: remote, packSize: packs.packSizes[index.name] ?? 0) { entry, record in
                    let source = "\(remote.location)/\(index.packPath)"
                    do {
                        let stored = try wrap { try PackFormat.checkRecord(record, entry, source: source) }
                        let raw = try wrap { try PackFormat.decodePayload(stored, entry, source: source) }
                        let taken = try take(entry, stored, raw)
                        out.withLock { d in
                            d.objects += 1
                            d.bytes += Int64(entry.rawLength)
                            d.corrupt[entry.id] = nil
                            switch taken {
                            case .stored(let children): d.children += children
                            case .hold(let list): d.held.append((entry, stored, list))
                            }
                        }
                        progress?.advance(bytes: entry.rawLength)
                    } catch let e as MLVError {
                        guard case .store(.corruptObject(_, _, let reason)) = e else { throw e }
                        out.withLock { $0.corrupt[entry.id] = "\(reason) (in \(source))" }
                        failed.withLock { $0.append(entry.id) }
                    }
                }
            }
            pending = failed.withLock { $0 }
            attempt += 1
        }
        return out.withLock { $0 }
    }

    /// Reads the records of `entries` (sorted by offset) from one remote pack: by ranges
    /// (neighbouring records merged into one request), or the whole pack into a
    /// temporary file when most of it is needed. Hands each record's bytes to `body`; a
    /// record cut short is handed over short, so its check fails.
    private func readRecords(_ entries: [IndexEntry], of index: PackIndex, from remote: any Remote, packSize: Int64,
                             _ body: (IndexEntry, UnsafeRawBufferPointer) throws -> Void) throws {
        let needed = entries.reduce(0) { $0 + PackFormat.recordHeaderSize + $1.storedLength }
        let end = { (e: IndexEntry) in e.offset + PackFormat.recordHeaderSize + e.storedLength }
        if needed >= Int(packSize) / 2 {
            let tmp = storePath + "/tmp/remote-\(getpid())-\(index.name).pack"
            defer { try? FS.unlink(tmp) }
            _ = try remoteCall { try remote.download(index.packPath, to: tmp) }
            let file = try wrap { try MappedFile(path: tmp) }
            for e in entries {
                let upper = min(end(e), file.count)
                try body(e, UnsafeRawBufferPointer(rebasing: file.bytes[min(e.offset, upper)..<upper]))
            }
            return
        }
        var i = 0
        while i < entries.count {
            var j = i + 1
            while j < entries.count, entries[j].offset - end(entries[j - 1]) <= 256 << 10,
                  end(entries[j]) - entries[i].offset <= pushPackBytes { j += 1 }
            let start = entries[i].offset
            let bytes = try remoteCall { try remote.getRange(index.packPath, offset: Int64(start), length: end(entries[j - 1]) - start) }
            try bytes.withUnsafeBytes { b in
                for e in entries[i..<j] {
                    let lo = min(e.offset - start, b.count), hi = min(end(e) - start, b.count)
                    try body(e, UnsafeRawBufferPointer(rebasing: b[lo..<hi]))
                }
            }
            i = j
        }
    }

    /// Every object reachable from `roots` that the remote does not hold (or holds only
    /// as a copy a fetch found corrupt), sorted by id. An object missing here is fine
    /// only when the remote has it (a lazy pull leaves chunks there).
    /// - Throws: `.damaged` naming an object that is neither here nor on the remote.
    func objectsToSend(_ roots: [ObjectID], packs: RemotePacks, corrupt: Set<ObjectID>) throws -> [ObjectID] {
        var seen = Set<ObjectID>()
        var send: [ObjectID] = []
        var stack = roots
        while let id = stack.popLast() {
            guard seen.insert(id).inserted else { continue }
            let onRemote = !corrupt.contains(id) && packs.contains(id)
            guard let (_, local) = objects.locate(id) else {
                if onRemote { continue }
                throw MLVError.damaged("object \(id.hex) is needed but is in neither this store nor the remote; run 'mlv fsck'")
            }
            if !onRemote { send.append(id) }
            if local.kind == .chunk { continue }
            let (kind, bytes) = try wrap { try local.kind == .chunkList ? objects.readUnverified(id) : objects.read(id) }
            stack += try objectChildren(id, kind: kind, bytes: bytes)
        }
        return send.sorted()
    }

    /// Cuts the objects into packs of at most `pushPackBytes` (one object larger than
    /// that gets a pack of its own), in the order they sit in the local packs, so each
    /// pack is written from long runs of neighbouring records. The cut depends only on
    /// the objects and this store's packs, so a retry that still lacks the same objects
    /// rebuilds the same packs.
    func packPlan(_ ids: [ObjectID]) throws -> [[(PackIndex, IndexEntry)]] {
        var located: [(PackIndex, IndexEntry)] = []
        located.reserveCapacity(ids.count)
        for id in ids {
            guard let found = objects.locate(id) else { throw MLVError.store(.missingObject(id)) }
            located.append(found)
        }
        located.sort { a, b in a.0.name != b.0.name ? a.0.name < b.0.name : a.1.offset < b.1.offset }
        var plan: [[(PackIndex, IndexEntry)]] = []
        var current: [(PackIndex, IndexEntry)] = []
        var size = PackFormat.packMagic.count
        for (index, entry) in located {
            let n = PackFormat.recordHeaderSize + entry.storedLength
            if !current.isEmpty && size + n > pushPackBytes {
                plan.append(current)
                current = []
                size = PackFormat.packMagic.count
            }
            current.append((index, entry))
            size += n
        }
        if !current.isEmpty { plan.append(current) }
        return plan
    }
}
