import MLVBasics
import MLVModel
import MLVRemote
import MLVStore

/// What `push` did.
public struct PushResult: Sendable {
    /// Packs uploaded (data and index), objects in them and their stored bytes.
    public var packs = 0
    public var objects = 0
    public var bytes: Int64 = 0
    /// Refs written on the remote, as people name them (`dataset:mnist@v3`).
    public var refsUpdated: [String] = []
    /// True when the remote already had everything asked for.
    public var upToDate: Bool { packs == 0 && refsUpdated.isEmpty }
}

/// What `fetch` found.
public struct FetchResult: Sendable {
    /// Remote refs that are new or moved since the last fetch.
    public var refsChanged: [String] = []
    public var objects = 0
    public var bytes: Int64 = 0
    /// Objects found damaged on the remote (not stored), by id, with why.
    public var corrupt: [ObjectID: String] = [:]
}

/// What `pull` changed here.
public struct PullResult: Sendable {
    /// What was received.
    public var fetch = FetchResult()
    /// Versions made local: `dataset:mnist@v4`.
    public var created: [String] = []
    /// Local-only versions given a new number because the remote made the same number
    /// first: (artifact, old number, new number).
    public var renumbered: [(artifact: String, from: Int, to: Int)] = []
    /// Registries, aliases and the stage configuration moved to the remote's.
    public var moved: [String] = []
    /// Refs left as they are because both sides changed them; each says what and how.
    public var conflicts: [String] = []
    /// With `rebaseRegistries`: local registry events recorded again on top of the
    /// remote's (`model:digits registry: promote v3 to production (was 1a2b3c4d5e6f)`).
    public var replayed: [String] = []
}

/// One line of `status --remote`.
public struct RemoteRefStatus: Sendable, Equatable {
    /// How the two sides differ; for registries, by ancestry of their event chains.
    public enum State: String, Sendable {
        case localOnly = "local only"
        case remoteOnly = "remote only"
        case differs = "differs"
        case ahead = "ahead"
        case behind = "behind"
        case diverged = "diverged"
    }
    /// The ref as people name it (`dataset:mnist@v3`, `model:digits registry`).
    public var ref: String
    public var state: State
}

extension Repository {
    /// Where a store that found a damaged object on the remote leaves a note
    /// (`damaged/<id>`), so that the next push from a store with a good copy sends it again.
    static let damagedPrefix = "damaged/"

    /// Records objects found damaged on the remote (in the tracking state, and as notes
    /// on the remote, best effort) and throws an error naming them.
    /// - Throws: always `.damaged`.
    func reportDamaged(_ corrupt: [ObjectID: String], on remote: any Remote, remoteName: String) throws -> Never {
        var tracking = loadTracking(remoteName)
        tracking.corrupt.formUnion(corrupt.keys)
        try? saveTracking(tracking, remoteName)
        for (id, why) in corrupt { _ = try? remote.put(Self.damagedPrefix + id.hex, Array((why + "\n").utf8)) }
        let list = corrupt.keys.sorted().prefix(10).map { "\($0.hex): \(corrupt[$0]!)" }
        throw MLVError.damaged("\(remote.location) holds \(corrupt.count) damaged object(s); they were not stored and no ref was changed:\n  "
                               + list.joined(separator: "\n  ") + "\nA push from a store with good copies sends them again.")
    }

    // MARK: refs on both sides

    /// Every ref of this store in the remote's key space, with its value (an object id;
    /// for the stage configuration the SHA-256 of `.mlv/stages`, when it was ever written).
    func localRemoteRefs() throws -> [RemoteRef: ObjectID] {
        var out: [RemoteRef: ObjectID] = [:]
        for kind in ArtifactKind.allCases.map(\.rawValue) {
            for name in try wrap({ try refs.names(kind: kind) }) {
                for v in try wrap({ try refs.versions(kind: kind, name: name) }) {
                    out[.version(kind: kind, name: name, number: v.number)] = v.id
                }
                for (alias, id) in try wrap({ try refs.aliases(kind: kind, name: name) }) {
                    out[.alias(kind: kind, name: name, alias: alias)] = id
                }
                if let head = try wrap({ try refs.head(kind: kind, name: name) }) { out[.head(kind: kind, name: name)] = head }
            }
        }
        if let stages = try wrap({ try FS.readFileIfExists(stagesPath) }) { out[.stages] = SHA256.hash(stages) }
        return out
    }

    /// Every ref on the remote with its entity tag and value: one listing, then a GET only
    /// for refs whose tag differs from the one last seen.
    func remoteRefs(_ remote: any Remote, tracking: RemoteTracking, jobs: Int) throws -> [RemoteRef: RemoteTracking.Seen] {
        var entries = try remoteCall { try remote.list(prefix: "refs/") }
        if let stages = try remoteCall({ try remote.head("stages") }) { entries.append(stages) }
        let out = Locked<[RemoteRef: RemoteTracking.Seen]>([:])
        var toRead: [(RemoteRef, String)] = []
        for e in entries {
            guard let ref = RemoteRef(key: e.key) else { continue }
            if let seen = tracking.refs[e.key], seen.etag == e.etag {
                out.withLock { $0[ref] = seen }
            } else {
                toRead.append((ref, e.key))
            }
        }
        try Parallel.forEach(toRead.count, workers: max(1, jobs)) { i in
            let (ref, key) = toRead[i]
            guard let object = try remoteCall({ try remote.get(key) }) else { return }  // deleted meanwhile
            let id: ObjectID
            if ref == .stages {
                id = SHA256.hash(object.bytes)
            } else {
                let text = String(decoding: object.bytes, as: UTF8.self)
                guard text.hasSuffix("\n"), let parsed = ObjectID(hex: text.dropLast()) else {
                    throw MLVError.damaged("\(remote.location)/\(key) does not hold an object id")
                }
                id = parsed
            }
            out.withLock { $0[ref] = RemoteTracking.Seen(etag: object.etag, id: id) }
        }
        return out.withLock { $0 }
    }

    /// The version numbers a model's registry chain from `head` names, as far as its events
    /// are stored here: each event's version and every stage and alias holder in its state.
    func versionsNamed(byChainFrom head: ObjectID) -> Set<Int> {
        var named = Set<Int>()
        for id in chainIDs(from: head) {
            guard let e = try? event(id) else { continue }
            named.insert(e.version)
            named.formUnion(e.state.stages.values.joined().map(\.version))
            named.formUnion(e.state.aliases.values.map(\.version))
        }
        return named
    }

    /// The ids of a model's registry chain from `head` back, as far as events are stored here.
    func chainIDs(from head: ObjectID) -> [ObjectID] {
        var ids: [ObjectID] = []
        var next: ObjectID? = head
        while let id = next, let e = try? event(id) {
            ids.append(id)
            next = e.previous
        }
        return ids
    }

    /// "seq 4, promote v3 to production by alice@lab at ..." when the event is stored here.
    func describeEvent(_ id: ObjectID) -> String {
        guard let e = try? event(id) else { return "event \(id.short)" }
        var what = e.action.rawValue + " v\(e.version)"
        if let stage = e.stage { what += " to \(stage)" }
        if let alias = e.alias { what += " as \(alias)" }
        return "event \(id.short): seq \(e.seq), \(what) by \(e.actor) at \(e.time)"
    }

    private func refBytes(_ id: ObjectID) -> [UInt8] { Array((id.hex + "\n").utf8) }

    // MARK: push

    /// The refs `push` sends for `selection`, out of `local`:
    /// - `NAME` (no `@`): the whole artifact: every version, its aliases, its registry.
    /// - one version (`NAME@v3`, `NAME@production`, `NAME@latest`, an id prefix): that
    ///   version and, when the artifact has a registry, its head and every version its
    ///   event chain names, so the remote's registry never names a version the remote
    ///   lacks.
    /// The stage configuration goes only with a full push.
    /// - Throws: what `resolve` throws for a ref that names nothing here.
    func pushSelection(_ selection: [String], local: [RemoteRef: ObjectID]) throws -> Set<RemoteRef> {
        var keep: Set<RemoteRef> = []
        for text in selection {
            let r = try resolve(text)
            let spec = try? RefSpec.parse(text)
            if let spec, !text.contains("@"), spec.name == r.name {
                keep.formUnion(local.keys.filter { $0.artifact?.kind == r.kind && $0.artifact?.name == r.name })
                continue
            }
            keep.insert(.version(kind: r.kind, name: r.name, number: r.version))
            let head = RemoteRef.head(kind: r.kind, name: r.name)
            guard let headID = local[head] else { continue }
            keep.insert(head)
            for n in versionsNamed(byChainFrom: headID) where local[.version(kind: r.kind, name: r.name, number: n)] != nil {
                keep.insert(.version(kind: r.kind, name: r.name, number: n))
            }
        }
        return keep
    }

    /// Sends refs and the objects they need that the remote lacks. Packs go first (data,
    /// then index), refs last: versions with create, the stage configuration and aliases
    /// with replace against the tag seen, registry heads with replace only when the
    /// remote's head is an ancestor of ours. Nothing is sent when any ref conflicts.
    /// - Parameter selection: refs to push (see `pushSelection`); empty: everything.
    /// - Throws: `.remoteConflict` saying what changed and how to reconcile; `.refused` for
    ///   an incompatible remote; `.remote` when it fails.
    public func push(to remote: any Remote, remoteName: String, refs selection: [String] = [], jobs: Int = 4,
                     progress: Progress? = nil) throws -> PushResult {
        var tracking = loadTracking(remoteName)
        var marker = try RemoteMarker.read(remote)
        if marker == nil {
            do {
                _ = try remote.create(RemoteMarker.key, RemoteMarker(format: RemoteMarker.formatVersion, chunker: config.chunker).encoded())
            } catch let e as RemoteError where e.kind == .preconditionFailed {
                marker = try RemoteMarker.read(remote)  // another push made it first
            } catch let e as RemoteError { throw MLVError.remote(e) }
        }
        try checkCompatible(marker, remote)

        var local = try localRemoteRefs()
        if !selection.isEmpty {
            let keep = try pushSelection(selection, local: local)
            local = local.filter { keep.contains($0.key) }
        }
        let there = try remoteRefs(remote, tracking: tracking, jobs: jobs)

        enum Write { case create, replace(String) }
        var writes: [(RemoteRef, ObjectID, Write)] = []
        var conflicts: [String] = []
        for ref in local.keys.sorted() {
            let mine = local[ref]!
            guard let theirs = there[ref] else { writes.append((ref, mine, .create)); continue }
            if theirs.id == mine { tracking.refs[ref.key] = theirs; continue }
            switch ref {
            case .version:
                conflicts.append("\(ref) on \(remote.location) is another version (manifest \(theirs.id.short)); yours is \(mine.short). Run 'mlv pull \(remoteName)' to renumber yours, then push again.")
            case .head:
                if chainIDs(from: mine).contains(theirs.id) {
                    writes.append((ref, mine, .replace(theirs.etag)))
                } else if let seen = tracking.refs[ref.key], seen.id != theirs.id {
                    conflicts.append("\(ref) moved on \(remote.location) since your last fetch: it was at \(describeEvent(seen.id)), it is now at \(describeEvent(theirs.id)). Run 'mlv pull \(remoteName)', then push again.")
                } else {
                    conflicts.append("\(ref) on \(remote.location) (\(describeEvent(theirs.id))) is not an ancestor of yours (\(describeEvent(mine))). Run 'mlv pull \(remoteName)' to compare.")
                }
            case .alias, .stages:
                if let seen = tracking.refs[ref.key], seen.etag == theirs.etag {
                    writes.append((ref, mine, .replace(theirs.etag)))
                } else {
                    conflicts.append("\(ref) moved on \(remote.location) since your last fetch (now \(theirs.id.short), yours \(mine.short)). Run 'mlv pull \(remoteName)', then push again.")
                }
            }
        }
        if !conflicts.isEmpty {
            throw MLVError.remoteConflict("push to \(remote.location) refused, nothing was sent:\n  " + conflicts.joined(separator: "\n  "))
        }

        var result = PushResult()
        // Objects someone found damaged on the remote: sent again by whoever has a good copy.
        let notes = try remoteCall { try remote.list(prefix: Self.damagedPrefix) }
        tracking.corrupt.formUnion(notes.compactMap { ObjectID(hex: $0.key.dropFirst(Self.damagedPrefix.count)) })
        let resend = tracking.corrupt.filter { objects.locate($0) != nil }
        if !writes.isEmpty || !resend.isEmpty {
            let packs = try RemotePacks(remote: remote, cache: remoteDirectory(remoteName) + "/packs", jobs: jobs)
            let roots = writes.filter { $0.0 != .stages }.map(\.1)
            let send = Set(try objectsToSend(roots, packs: packs, corrupt: tracking.corrupt)).union(resend).sorted()
            let plan = try packPlan(send)
            let sent = Locked((packs: 0, objects: 0, bytes: Int64(0)))
            try Parallel.forEach(plan.count, workers: max(1, jobs)) { i in
                // Records go from the local pack files to the remote without being
                // gathered in memory where the remote can copy file ranges (see copyPack).
                let built = try wrap { try self.objects.copyPack(plan[i]) }
                let hasIndex = packs.indexes.contains { $0.name == built.name }
                let replacesCorrupt = plan[i].contains { tracking.corrupt.contains($0.1.id) }
                if hasIndex && !replacesCorrupt { return }
                if replacesCorrupt || packs.packSizes[built.name] != Int64(built.size) {
                    let pieces = [UploadPiece.bytes(PackFormat.packMagic)]
                        + built.runs.map { UploadPiece.file(fd: $0.fd, path: $0.path, offset: $0.offset, length: $0.length) }
                    // The pieces name the copied pack's descriptors, which close when it is released.
                    _ = try withExtendedLifetime(built) { try remoteCall { try remote.put("packs/\(built.name).pack", pieces: pieces) } }
                }
                if !hasIndex { _ = try remoteCall { try remote.put("packs/\(built.name).idx", built.index) } }
                progress?.advance(bytes: built.size)
                sent.withLock { $0.packs += 1; $0.objects += plan[i].count; $0.bytes += Int64(built.size) }
            }
            (result.packs, result.objects, result.bytes) = sent.withLock { $0 }
            for id in resend { try? remote.delete(Self.damagedPrefix + id.hex) }
            tracking.corrupt.subtract(send)
        }

        // Refs last, in order: versions, stages, aliases, heads.
        for (ref, id, write) in writes {
            let bytes = ref == .stages ? try wrap { try FS.readFile(stagesPath) } : refBytes(id)
            do {
                let etag: String
                switch write {
                case .create: etag = try remote.create(ref.key, bytes)
                case .replace(let expected): etag = try remote.replace(ref.key, bytes, expected: expected)
                }
                tracking.refs[ref.key] = .init(etag: etag, id: ref == .stages ? SHA256.hash(bytes) : id)
                result.refsUpdated.append(ref.description)
            } catch let e as RemoteError where e.kind == .preconditionFailed {
                conflicts.append("\(ref) changed on \(remote.location) while this push ran. Run 'mlv pull \(remoteName)', then push again.")
            } catch let e as RemoteError {
                try saveTracking(tracking, remoteName)
                throw MLVError.remote(e)
            }
        }
        try saveTracking(tracking, remoteName)
        if !conflicts.isEmpty {
            throw MLVError.remoteConflict("push to \(remote.location): " + (result.refsUpdated.isEmpty ? "" : "\(result.refsUpdated.count) refs landed, ")
                                          + "\(conflicts.count) refused:\n  " + conflicts.joined(separator: "\n  "))
        }
        return result
    }

    // MARK: fetch and pull

    /// Reads the remote's refs and the small objects they reach (manifests, events,
    /// trees, chunk lists), verified; chunks stay there until a pull or a checkout needs
    /// them. Records what the remote's refs were in `.mlv/remotes/<name>/tracking`.
    /// Local refs do not change.
    /// - Throws: `.refused` for an incompatible remote, `.remote` when it fails.
    public func fetch(from remote: any Remote, remoteName: String, jobs: Int = 4, progress: Progress? = nil) throws -> FetchResult {
        try fetch(remote, remoteName, selection: [], metadataOnly: true, jobs: jobs, progress: progress).0
    }

    private func fetch(_ remote: any Remote, _ remoteName: String, selection: [String], metadataOnly: Bool, jobs: Int,
                       progress: Progress?) throws -> (FetchResult, [RemoteRef: RemoteTracking.Seen], RemoteTracking) {
        let old = loadTracking(remoteName)
        var result = FetchResult()
        guard let marker = try RemoteMarker.read(remote) else { return (result, [:], old) }
        try checkCompatible(marker, remote)
        var there = try remoteRefs(remote, tracking: old, jobs: jobs)
        // With a selection: every ref the remote has, for the versions a pulled registry names.
        var unselected: [RemoteRef: RemoteTracking.Seen]?
        if !selection.isEmpty {
            var specs: [RefSpec] = []
            for text in selection {
                do { specs.append(try RefSpec.parse(text)) } catch let e as ModelError { throw MLVError.invalidArgument(e.message) }
            }
            let all = there
            unselected = all
            // One version brings its artifact's registry head too (as push sends it).
            there = all.filter { ref, _ in
                guard let (kind, name) = ref.artifact else { return false }
                return specs.contains { s in
                    guard s.name == name, s.kind == nil || s.kind == kind else { return false }
                    if case .version(let n) = s.selector, case .version(_, _, let m) = ref { return n == m }
                    if case .version = s.selector, case .head = ref { return true }
                    if case .version = s.selector { return false }
                    return true
                }
            }
            // A registry head alone is not a match: `NAME@v9` that the remote lacks is not found.
            func isVersion(_ ref: RemoteRef) -> Bool { if case .version = ref { return true } else { return false } }
            func asksVersion(_ spec: RefSpec) -> Bool { if case .version = spec.selector { return true } else { return false } }
            if specs.allSatisfy(asksVersion), !there.keys.contains(where: isVersion) { there = [:] }
            if there.isEmpty {
                throw MLVError.notFound("\(remote.location) has none of \(selection.joined(separator: ", "))")
            }
        }
        result.refsChanged = there.filter { old.refs[$0.key.key]?.id != $0.value.id }.keys.sorted().map(\.description)
        let packs = try RemotePacks(remote: remote, cache: remoteDirectory(remoteName) + "/packs", jobs: jobs)
        let roots = there.filter { $0.key != .stages }.keys.sorted().map { there[$0]!.id }
        var got = try receive(roots, from: remote, packs: packs, metadataOnly: metadataOnly, jobs: jobs, progress: progress)
        if let unselected, got.corrupt.isEmpty, got.missing.isEmpty {
            // The versions a pulled registry's events (just received) name come as well, so
            // the local registry never names a version this store lacks.
            var extra: [RemoteRef: RemoteTracking.Seen] = [:]
            for case let (.head(kind, name), seen) in there {
                for n in versionsNamed(byChainFrom: seen.id) {
                    let ref = RemoteRef.version(kind: kind, name: name, number: n)
                    if there[ref] == nil, let s = unselected[ref] { extra[ref] = s }
                }
            }
            if !extra.isEmpty {
                there.merge(extra) { a, _ in a }
                let more = try receive(extra.keys.sorted().map { extra[$0]!.id }, from: remote, packs: packs,
                                       metadataOnly: metadataOnly, jobs: jobs, progress: progress)
                got.objects += more.objects
                got.bytes += more.bytes
                got.corrupt.merge(more.corrupt) { a, _ in a }
                got.missing.formUnion(more.missing)
            }
        }
        result.objects = got.objects
        result.bytes = got.bytes
        result.corrupt = got.corrupt
        for id in got.missing { result.corrupt[id] = "missing from the remote" }
        var tracking = old
        for (id, why) in result.corrupt { _ = try? remote.put(Self.damagedPrefix + id.hex, Array((why + "\n").utf8)) }
        // Refs count as seen only when everything they reach arrived.
        if result.corrupt.isEmpty { for (ref, seen) in there { tracking.refs[ref.key] = seen } }
        if selection.isEmpty && result.corrupt.isEmpty {
            let keys = Set(there.keys.map(\.key))
            tracking.refs = tracking.refs.filter { keys.contains($0.key) }
        }
        tracking.corrupt.formUnion(got.corrupt.keys)
        try saveTracking(tracking, remoteName)
        return (result, there, old)
    }

    /// Fetches, downloads the objects the remote's refs reach (all of them, or with
    /// `lazy` everything but chunks, which a checkout fetches when it needs them), then
    /// makes the remote's refs local: new versions are created; a version number both
    /// sides made differently is taken by the remote's, and the local-only version gets
    /// the next free number (reported); registries fast-forward; aliases and the stage
    /// configuration follow the remote unless they changed here too. Anything both sides
    /// changed is left as it is and reported in `conflicts`. A `selection` of one version
    /// (`NAME@vN`) also brings the artifact's registry head and every version its events
    /// name, as `push` sends them.
    /// - Throws: `.damaged` naming objects the remote holds corrupt (no ref is changed
    ///   then); `.refused` for an incompatible remote; `.remote` when it fails.
    ///
    /// With `rebaseRegistries`, a registry that changed on both sides takes the remote's
    /// events, then records each local-only event again on top of them, oldest first
    /// (`replayRegistry`); an event that no longer applies is reported in `conflicts`.
    public func pull(from remote: any Remote, remoteName: String, refs selection: [String] = [], lazy: Bool = false,
                     rebaseRegistries: Bool = false, jobs: Int = 4, progress: Progress? = nil) throws -> PullResult {
        var result = PullResult()
        // Held from before the objects arrive until the refs name them, so gc never runs in between.
        let guardLock = try lock(.shared)
        defer { withExtendedLifetime(guardLock) {} }
        let (fetched, there, old) = try fetch(remote, remoteName, selection: selection, metadataOnly: lazy, jobs: jobs, progress: progress)
        result.fetch = fetched
        if !fetched.corrupt.isEmpty { try reportDamaged(fetched.corrupt, on: remote, remoteName: remoteName) }
        for ref in there.keys.sorted() {
            let theirs = there[ref]!.id
            switch ref {
            case .version(let kind, let name, let n):
                try pullVersion(kind: kind, name: name, number: n, id: theirs, there: there, remote: remote, into: &result)
            case .stages:
                let mine = try wrap { try FS.readFileIfExists(stagesPath) }
                let mineID = mine.map { SHA256.hash($0) }
                if mineID == theirs { continue }
                if mine == nil || mineID == old.refs[ref.key]?.id {
                    guard let object = try remoteCall({ try remote.get("stages") }), SHA256.hash(object.bytes) == theirs else {
                        result.conflicts.append("the stage configuration changed on \(remote.location) during this pull; pull again")
                        continue
                    }
                    do { _ = try StageConfig.decode(object.bytes) } catch { throw MLVError.damaged("\(remote.location)/stages: \(error)") }
                    try wrap { try FS.atomicWrite(stagesPath, object.bytes) }
                    result.moved.append(ref.description)
                } else if theirs != old.refs[ref.key]?.id {
                    result.conflicts.append("the stage configuration changed here and on \(remote.location); yours is kept. Compare with 'mlv stage list' and reconcile by hand.")
                }
            case .alias(let kind, let name, let alias):
                let mine = try wrap { try refs.alias(kind: kind, name: name, alias: alias) }
                if mine == theirs { continue }
                if mine == nil || mine == old.refs[ref.key]?.id {
                    try wrap { try refs.updateAlias(kind: kind, name: name, alias: alias, expected: mine, new: theirs) }
                    result.moved.append(ref.description)
                } else {
                    result.conflicts.append("\(ref) points at \(mine!.short) here and \(theirs.short) on \(remote.location); yours is kept")
                }
            case .head(let kind, let name):
                let mine = try wrap { try refs.head(kind: kind, name: name) }
                if mine == theirs { continue }
                if let mine, chainIDs(from: mine).contains(theirs) { continue }  // ours is ahead: push sends it
                if mine == nil || chainIDs(from: theirs).contains(mine!) {
                    do {
                        try refs.updateHead(kind: kind, name: name, expected: mine, new: theirs)
                    } catch StoreError.refChanged {
                        throw MLVError.registryChanged(ref: "\(name) registry")
                    } catch let e as StoreError { throw MLVError.store(e) }
                    result.moved.append(ref.description)
                } else if rebaseRegistries, kind == Self.modelKind {
                    try replayRegistry(model: name, mine: mine!, onto: theirs, display: ref.description, into: &result)
                } else {
                    let theirChain = chainIDs(from: theirs)
                    let common = chainIDs(from: mine!).first { theirChain.contains($0) }
                    result.conflicts.append("\(ref) diverged: here \(describeEvent(mine!)), on \(remote.location) \(describeEvent(theirs))"
                                            + (common.map { "; last shared \(describeEvent($0))" } ?? "; no shared event")
                                            + ". Both chains are kept intact; yours stays local and push will refuse it. 'mlv pull --rebase-registry' takes the remote's events and re-applies yours on top.")
                }
            }
        }
        return result
    }

    /// Rewrites `model`'s registry as `theirs` followed by each event of `mine`'s chain
    /// that `theirs` lacks, recorded again, oldest first, through the ordinary registry
    /// operations: the same action, version (by manifest id), stage or alias, `forced` and
    /// actor, checked against the policy and state as they are then, with the message
    /// saying it was re-applied and naming the original event. The head stays locked
    /// throughout and moves once, from `mine` to the last new event (compare-and-swap):
    /// a crash or failure before that leaves the registry as it was, and the new events
    /// unreferenced until gc. The originals are named by no head afterwards (they were never
    /// published: push refuses a diverged head) and go at a gc. An event that no longer
    /// applies (the version already holds that stage, approvals are missing, the version
    /// is tainted now) is skipped and reported; the rest are still re-applied.
    /// - Throws: `.registryChanged` when the head moved meanwhile (nothing changed then).
    func replayRegistry(model: String, mine: ObjectID, onto theirs: ObjectID, display: String,
                        into result: inout PullResult) throws {
        let theirChain = Set(chainIDs(from: theirs))
        let localOnly = chainIDs(from: mine).prefix { !theirChain.contains($0) }.reversed()
        var events: [(ObjectID, Event)] = []
        for id in localOnly { events.append((id, try event(id))) }
        let headPath = "\(Self.modelKind)/\(model)/head"
        let held = try lockChainHead(headPath, display: display, expecting: mine)
        defer { held.release() }
        stagedChains.withLock { $0[headPath] = theirs }
        defer { stagedChains.withLock { $0[headPath] = nil } }
        var replayed: [String] = [], skipped: [String] = []
        for (id, e) in events {
            let note = "re-applied after pull; first recorded as \(id.short) by \(e.actor) at \(e.time)"
            let message = e.message.isEmpty ? note : "\(e.message) (\(note))"
            // The version by its manifest id: its number could mean another version here.
            let version = e.id.hex
            do {
                guard try resolveModel(version).name == model else {
                    throw MLVError.notFound("\(e.id.short) is no longer a version of \(model)")
                }
                switch e.action {
                case .approve:
                    try approve(version, for: e.stage ?? "", message: message, actor: e.actor)
                case .promote:
                    try promote(version, to: e.stage ?? "", message: message, actor: e.actor, force: e.forced)
                case .aliasSet:
                    try setAlias(version, alias: e.alias ?? "", message: message, actor: e.actor)
                case .aliasRemove:
                    try removeAlias(model: model, alias: e.alias ?? "", message: message, actor: e.actor)
                }
                replayed.append("\(display): \(describeEvent(id))")
            } catch let error as MLVError {
                skipped.append("\(display): your \(describeEvent(id)) was not re-applied: \(error)")
            }
        }
        let final = stagedChains.withLock { $0[headPath] } ?? theirs
        CrashPoint.hit("registry.rebase-staged")
        try wrap { try held.write(final) }
        result.moved.append(display)
        result.replayed += replayed
        result.conflicts += skipped
    }

    /// Makes one remote version local, renumbering a local-only version that took its number.
    private func pullVersion(kind: String, name: String, number: Int, id: ObjectID, there: [RemoteRef: RemoteTracking.Seen],
                             remote: any Remote, into result: inout PullResult) throws {
        let display = "\(kind):\(name)@v\(number)"
        if try wrap({ try refs.createVersion(kind: kind, name: name, number: number, id: id) }) {
            result.created.append(display)
            return
        }
        guard let mine = try wrap({ try refs.version(kind: kind, name: name, number: number) }), mine != id else { return }
        let remoteNumbers = there.compactMap { ref, seen -> (Int, ObjectID)? in
            if case .version(kind, name, let n) = ref { return (n, seen.id) } else { return nil }
        }
        if !remoteNumbers.contains(where: { $0.1 == mine }) {
            // Local only: does any local-only registry event name it by this number?
            if kind == Self.modelKind, let head = try wrap({ try refs.head(kind: kind, name: name) }) {
                let shared = Set(there[.head(kind: kind, name: name)].map { chainIDs(from: $0.id) } ?? [])
                for eventID in chainIDs(from: head) where !shared.contains(eventID) {
                    guard let e = try? event(eventID) else { continue }
                    let holders = e.state.stages.values.joined().map { ($0.version, $0.id) } + e.state.aliases.values.map { ($0.version, $0.id) }
                    if (e.version == number && e.id == mine) || holders.contains(where: { $0 == number && $1 == mine }) {
                        result.conflicts.append("\(display) is \(id.short) on \(remote.location) and \(mine.short) here, and your registry events name yours (\(describeEvent(eventID))); it cannot be renumbered without rewriting them. Left as it is.")
                        return
                    }
                }
            }
            let localMax = try wrap { try refs.latestVersion(kind: kind, name: name) }?.number ?? 0
            var next = max(localMax, remoteNumbers.map(\.0).max() ?? 0) + 1
            while !(try wrap { try refs.createVersion(kind: kind, name: name, number: next, id: mine) }) { next += 1 }
            result.renumbered.append(("\(kind):\(name)", number, next))
        }
        try wrap { try refs.repointVersion(kind: kind, name: name, number: number, id: id) }
        result.created.append(display)
    }

    // MARK: status

    /// What is here only, on the remote only, or different, comparing refs (one listing,
    /// GETs only for refs that moved since the last fetch). Changes nothing.
    public func remoteStatus(_ remote: any Remote, remoteName: String, jobs: Int = 4) throws -> [RemoteRefStatus] {
        let local = try localRemoteRefs()
        let there = try remoteRefs(remote, tracking: loadTracking(remoteName), jobs: jobs)
        var out: [RemoteRefStatus] = []
        for ref in Set(local.keys).union(there.keys).sorted() {
            let mine = local[ref], theirs = there[ref]?.id
            if mine == theirs { continue }
            let state: RemoteRefStatus.State
            if theirs == nil { state = .localOnly }
            else if mine == nil { state = .remoteOnly }
            else if case .head = ref {
                if chainIDs(from: mine!).contains(theirs!) { state = .ahead }
                else if chainIDs(from: theirs!).contains(mine!) { state = .behind }
                else { state = (try? event(theirs!)) == nil ? .differs : .diverged }
            } else { state = .differs }
            out.append(RemoteRefStatus(ref: ref.description, state: state))
        }
        return out
    }

    // MARK: clone

    /// Makes a store in `directory` with the remote's chunker settings, records the
    /// remote as `origin` and pulls everything.
    /// - Throws: `.alreadyInitialized`, `.notFound` when the remote holds no mlv store,
    ///   and whatever `addRemote` and `pull` throw.
    public static func clone(_ settings: RemoteSettings, remote: any Remote, into directory: String, lazy: Bool = false,
                             jobs: Int = 4, progress: Progress? = nil) throws -> (Repository, PullResult) {
        guard let marker = try RemoteMarker.read(remote) else {
            throw MLVError.notFound("\(remote.location) holds no mlv store (nothing was pushed to it)")
        }
        try wrap { try FS.makeDirectories(directory) }
        let repo = try initialize(at: directory, chunker: marker.chunker)
        try repo.addRemote(settings, remote: remote)
        return (repo, try repo.pull(from: remote, remoteName: settings.name, lazy: lazy, jobs: jobs, progress: progress))
    }
}
