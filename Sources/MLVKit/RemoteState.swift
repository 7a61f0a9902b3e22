import MLVBasics
import MLVModel
import MLVRemote
import MLVStore

/// A ref on a remote, parsed from its key. Keys mirror the local store's paths:
/// `refs/<kind>/<name>/versions/<N>`, `refs/<kind>/<name>/aliases/<alias>`,
/// `refs/<kind>/<name>/head`, and `stages` for the stage configuration.
enum RemoteRef: Hashable, Sendable, Comparable, CustomStringConvertible {
    case version(kind: String, name: String, number: Int)
    case alias(kind: String, name: String, alias: String)
    case head(kind: String, name: String)
    case stages

    var key: String {
        switch self {
        case .version(let k, let n, let v): "refs/\(k)/\(n)/versions/\(v)"
        case .alias(let k, let n, let a): "refs/\(k)/\(n)/aliases/\(a)"
        case .head(let k, let n): "refs/\(k)/\(n)/head"
        case .stages: "stages"
        }
    }

    /// How a person names it.
    var description: String {
        switch self {
        case .version(let k, let n, let v): "\(k):\(n)@v\(v)"
        case .alias(let k, let n, let a): "\(k):\(n)@\(a)"
        case .head(let k, let n): "\(k):\(n) registry"
        case .stages: "stage configuration"
        }
    }

    var artifact: (kind: String, name: String)? {
        switch self {
        case .version(let k, let n, _), .alias(let k, let n, _), .head(let k, let n): (k, n)
        case .stages: nil
        }
    }

    /// Write order on both sides: versions, then stages and aliases, then registry heads
    /// (a head's events name versions and stages).
    private var rank: Int {
        switch self {
        case .version: 0
        case .stages: 1
        case .alias: 2
        case .head: 3
        }
    }

    static func < (a: RemoteRef, b: RemoteRef) -> Bool {
        a.rank != b.rank ? a.rank < b.rank : utf8Less(a.key, b.key)
    }

    /// Parses a remote key; nil for anything that is not a well-formed ref (a hostile or
    /// foreign key never becomes a local path).
    init?(key: String) {
        if key == "stages" { self = .stages; return }
        let parts = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 4, parts[0] == "refs", ArtifactKind(rawValue: parts[1]) != nil,
              ArtifactName.problem(with: parts[2]) == nil else { return nil }
        switch (parts.count, parts[3]) {
        case (4, "head"): self = .head(kind: parts[1], name: parts[2])
        case (5, "versions"):
            guard let n = Int(parts[4]), n > 0, String(n) == parts[4] else { return nil }
            self = .version(kind: parts[1], name: parts[2], number: n)
        case (5, "aliases"):
            guard ArtifactName.problem(with: parts[4]) == nil, !parts[4].hasSuffix(".lock") else { return nil }
            self = .alias(kind: parts[1], name: parts[2], alias: parts[4])
        default: return nil
        }
    }
}

/// What this store last saw on one remote, kept in `.mlv/remotes/<name>/tracking`
/// (canonical JSON, rewritten whole): each ref's entity tag and value (an object id; for
/// the stage configuration the SHA-256 of its bytes), and the objects a fetch found
/// corrupt there. It is a cache: deleting it costs one GET per ref on the next command,
/// and a push then treats every remote ref as unseen.
struct RemoteTracking: Sendable, Equatable {
    struct Seen: Sendable, Equatable {
        var etag: String
        var id: ObjectID
    }
    var refs: [String: Seen] = [:]
    /// Objects a fetch found corrupt on the remote: a push re-sends them even though the
    /// remote's index lists them.
    var corrupt: Set<ObjectID> = []

    func encoded() -> [UInt8] {
        JSON.object([
            "schema": .string("mlv.remote-tracking/1"),
            "refs": .object(refs.mapValues { .object(["etag": .string($0.etag), "id": .string($0.id.hex)]) }),
            "corrupt": .array(corrupt.sorted().map { .string($0.hex) }),
        ]).canonicalBytes() + [10]
    }

    static func decode(_ bytes: [UInt8]) -> RemoteTracking {
        guard let json = try? JSON.parse(bytes), case .object(let refs)? = json["refs"] else { return RemoteTracking() }
        var t = RemoteTracking()
        for (key, value) in refs {
            if let etag = value["etag"]?.string, let hex = value["id"]?.string, let id = ObjectID(hex: hex) {
                t.refs[key] = Seen(etag: etag, id: id)
            }
        }
        if case .array(let ids)? = json["corrupt"] {
            t.corrupt = Set(ids.compactMap { $0.string.flatMap { ObjectID(hex: $0) } })
        }
        return t
    }
}

extension Repository {
    func trackingPath(_ remote: String) -> String { remoteDirectory(remote) + "/tracking" }

    func loadTracking(_ remote: String) -> RemoteTracking {
        guard let bytes = try? FS.readFileIfExists(trackingPath(remote)) else { return RemoteTracking() }
        return RemoteTracking.decode(bytes)
    }

    func saveTracking(_ tracking: RemoteTracking, _ remote: String) throws {
        try wrap {
            try FS.makeDirectories(remoteDirectory(remote))
            try FS.atomicWrite(trackingPath(remote), tracking.encoded())
        }
    }
}
