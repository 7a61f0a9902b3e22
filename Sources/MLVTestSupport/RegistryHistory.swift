import MLVBasics
import MLVKit
import MLVModel
import MLVStore

/// A generated model registry for `scripts/bench-registry`: `models` models with
/// `versions` versions each and, per version, `eventsPerVersion` events cycling approve
/// (for production), promote to staging, promote to production (the previous holder
/// moves to archived) and alias-set champion. Written through the library's own encoders
/// and pack writer into one pack, so what the benchmark reads is what mlv writes; refs
/// are written without fsync, since set-up speed matters here, not durability.
public struct RegistryHistory: Sendable {
    public var models = 5000
    public var versions = 10
    public var eventsPerVersion = 4

    public init() {}

    /// Creates a store in `dir` holding the history.
    /// - Throws: what the store throws.
    public func generate(in dir: String) throws {
        let repo = try Repository.initialize(at: dir)
        let writer = repo.objects.writer()
        let blob = Array("weights\n".utf8)
        let blobID = SHA256.hash(blob)
        try writer.put(blobID, kind: .chunk, bytes: blob, compression: .never)
        let tree = Tree(entries: [Tree.Entry(name: "model.bin", kind: .file, mode: 0o644, size: Int64(blob.count), id: blobID)])
        let treeBytes = tree.canonicalBytes()
        try writer.put(tree.id, kind: .tree, bytes: treeBytes, compression: .always)
        let base: Int64 = 1_767_225_600  // 2026-01-01T00:00:00Z
        let actors = ["alice@lab", "bob@lab", "carol@lab"]
        var heads: [(String, ObjectID)] = []
        var versionRefs: [(String, Int, ObjectID)] = []
        for m in 0..<models {
            let name = "model-\(String(m + 100_000).dropFirst())"
            var ids: [ObjectID] = []
            for v in 1...versions {
                let manifest = ModelManifest(name: name, root: tree.id, files: 1, bytes: Int64(blob.count), inputs: [],
                                             message: "v\(v)", meta: [:], author: actors[v % 3],
                                             created: Timestamp.format(seconds: base + Int64(m * 1000 + v)), source: "out/model.bin")
                let bytes = manifest.canonicalBytes()
                let id = SHA256.hash(bytes)
                try writer.put(id, kind: .manifest, bytes: bytes, compression: .always)
                ids.append(id)
                versionRefs.append((name, v, id))
            }
            var state = RegistryState()
            var previous: ObjectID?
            var seq = 0
            var clock = base + Int64(m) * 100_000
            for v in 1...versions {
                let id = ids[v - 1]
                for step in 0..<eventsPerVersion {
                    seq += 1
                    clock += 60
                    let now = Timestamp.format(seconds: clock)
                    let actor = actors[(seq + step) % 3]
                    let holder = Holder(version: v, id: id, since: now, by: actor)
                    var action = Event.Action.approve
                    var stage: String? = "production", alias: String? = nil
                    var used: [Approval] = []
                    switch step % 4 {
                    case 0:
                        state.pending.append(Approval(version: v, stage: "production", actor: actor, time: now, message: "ok"))
                    case 1:
                        action = .promote; stage = "staging"
                        state.stages["staging"] = [holder]
                    case 2:
                        action = .promote
                        used = state.pending.filter { $0.version == v }
                        state.pending.removeAll { $0.version == v }
                        state.stages["staging"] = nil
                        state.stages["archived", default: []] += (state.stages["production"] ?? []).map {
                            Holder(version: $0.version, id: $0.id, since: now, by: actor)
                        }
                        state.stages["production"] = [holder]
                    default:
                        action = .aliasSet; stage = nil; alias = "champion"
                        state.aliases["champion"] = holder
                    }
                    let event = Event(model: name, seq: seq, previous: previous, actor: actor, time: now, action: action,
                                      version: v, id: id, stage: stage, alias: alias, message: "step \(step)", approvals: used,
                                      state: state)
                    let bytes = event.canonicalBytes()
                    let eventID = SHA256.hash(bytes)
                    try writer.put(eventID, kind: .manifest, bytes: bytes, compression: .always)
                    previous = eventID
                }
            }
            if let previous { heads.append((name, previous)) }
        }
        try writer.commit()
        let refs = repo.storePath + "/refs/model"
        for (name, v, id) in versionRefs {
            try FS.makeDirectories("\(refs)/\(name)/versions")
            try FS.atomicWrite("\(refs)/\(name)/versions/\(v)", Array((id.hex + "\n").utf8), durable: false)
        }
        for (name, id) in heads {
            try FS.atomicWrite("\(refs)/\(name)/head", Array((id.hex + "\n").utf8), durable: false)
        }
    }
}
