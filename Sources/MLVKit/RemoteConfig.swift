import MLVBasics
import MLVModel
import MLVRemote
import MLVStore

/// One configured remote: where it is, never how to log in to it. Kept as canonical JSON
/// in `.mlv/remotes/<name>/config`; credentials come from the environment at use.
public struct RemoteSettings: Sendable, Equatable {
    /// How commands name it (`origin`); an artifact-style name.
    public var name: String
    /// `s3://bucket/prefix` or an absolute directory path.
    public var url: String
    /// An S3 endpoint other than AWS (`http://127.0.0.1:9000`).
    public var endpoint: String?
    /// The S3 region; nil: from the environment or profile, else `us-east-1`.
    public var region: String?

    /// A remote's settings (nothing is checked or connected yet).
    public init(name: String, url: String, endpoint: String? = nil, region: String? = nil) {
        self.name = name; self.url = url; self.endpoint = endpoint; self.region = region
    }

    /// True for an `s3://` URL.
    public var isS3: Bool { url.hasPrefix("s3://") }

    func encoded() -> [UInt8] {
        var o: [String: JSON] = ["schema": .string("mlv.remote-config/1"), "url": .string(url)]
        if let endpoint { o["endpoint"] = .string(endpoint) }
        if let region { o["region"] = .string(region) }
        return JSON.object(o).canonicalBytes() + [10]
    }

    static func decode(_ bytes: [UInt8], name: String, path: String) throws -> RemoteSettings {
        guard let json = try? JSON.parse(bytes), let url = json["url"]?.string else {
            throw MLVError.damaged("'\(path)' is not a valid remote configuration")
        }
        return RemoteSettings(name: name, url: url, endpoint: json["endpoint"]?.string, region: json["region"]?.string)
    }
}

/// The marker object at the root of every remote, `mlv-remote.json`: the remote's format
/// version and the chunker parameters of the stores that push to it. Pushing chunks cut
/// with other parameters would defeat deduplication silently, so it is refused.
public struct RemoteMarker: Sendable, Equatable {
    public static let key = "mlv-remote.json"
    public static let schema = "mlv.remote/1"
    /// The remote layout this mlv writes and reads.
    public static let formatVersion = 1
    /// The remote layout's version (see `docs/design.md`, Remotes).
    public var format: Int
    /// The chunker parameters every store pushing here must use.
    public var chunker: ChunkerParameters

    func encoded() -> [UInt8] {
        JSON.object([
            "schema": .string(Self.schema), "format": .int(Int64(format)),
            "chunker": .object(["min": .int(Int64(chunker.min)), "avg": .int(Int64(chunker.avg)), "max": .int(Int64(chunker.max))]),
        ]).canonicalBytes() + [10]
    }

    static func decode(_ bytes: [UInt8], location: String) throws -> RemoteMarker {
        guard let json = try? JSON.parse(bytes), json["schema"]?.string == schema, let format = json["format"]?.int else {
            throw MLVError.damaged("\(location)/\(key) is not an mlv remote marker")
        }
        if format > Int64(formatVersion) {
            throw MLVError.refused("\(location) has remote format \(format); this mlv reads up to \(formatVersion). Upgrade mlv to use it.")
        }
        guard let c = json["chunker"], let mn = c["min"]?.int, let av = c["avg"]?.int, let mx = c["max"]?.int else {
            throw MLVError.damaged("\(location)/\(key) is missing the chunker settings")
        }
        return RemoteMarker(format: Int(format), chunker: ChunkerParameters(min: Int(mn), avg: Int(av), max: Int(mx)))
    }

    /// Reads the remote's marker, or nil for a remote nothing was pushed to yet.
    /// - Throws: `.refused` for a newer format, `.damaged` for a bad marker, `.remote` when unreachable.
    static func read(_ remote: any Remote) throws -> RemoteMarker? {
        guard let object = try remoteCall({ try remote.get(key) }) else { return nil }
        return try decode(object.bytes, location: remote.location)
    }
}

extension Repository {
    var remotesPath: String { storePath + "/remotes" }
    func remoteDirectory(_ name: String) -> String { remotesPath + "/" + name }

    /// Every configured remote, sorted by name.
    /// - Throws: `.damaged` for an unreadable configuration.
    public func remotes() throws -> [RemoteSettings] {
        guard FS.isDirectory(remotesPath) else { return [] }
        return try wrap { try FS.listDirectory(remotesPath) }.map(\.name).sorted().compactMap { name in
            let path = remoteDirectory(name) + "/config"
            guard let bytes = try wrap({ try FS.readFileIfExists(path) }) else { return nil }
            return try RemoteSettings.decode(bytes, name: name, path: path)
        }
    }

    /// The remote called `name`, or the only one / `origin` when `name` is nil.
    /// - Throws: `.notFound` naming the remotes there are.
    public func remoteSettings(_ name: String?) throws -> RemoteSettings {
        let all = try remotes()
        if let name {
            guard let r = all.first(where: { $0.name == name }) else {
                throw MLVError.notFound("no remote '\(name)'" + (all.isEmpty ? " (none configured; add one with 'mlv remote add NAME URL')"
                                                                     : " (remotes: \(all.map(\.name).joined(separator: ", ")))"))
            }
            return r
        }
        if let origin = all.first(where: { $0.name == "origin" }) { return origin }
        if all.count == 1 { return all[0] }
        if all.isEmpty { throw MLVError.notFound("no remote is configured; add one with 'mlv remote add NAME URL'") }
        throw MLVError.invalidArgument("several remotes are configured (\(all.map(\.name).joined(separator: ", "))); name one")
    }

    /// Records a remote after checking that it honours conditional writes and that its
    /// format and chunker parameters match this store.
    /// - Throws: `.invalidName`, `.refused` (exists, ignores conditional writes, newer
    ///   format, other chunker), `.remote` when unreachable.
    public func addRemote(_ settings: RemoteSettings, remote: (any Remote)? = nil) throws {
        if let p = ArtifactName.problem(with: settings.name) { throw MLVError.invalidName(settings.name, reason: p) }
        var settings = settings
        if !settings.url.contains("://") { settings.url = FS.absolute(settings.url) }
        let dir = remoteDirectory(settings.name)
        if FS.exists(dir + "/config") { throw MLVError.refused("remote '\(settings.name)' already exists (remove it first)") }
        if remote == nil && !settings.url.contains("://") {
            // A directory remote is made on first use, like a bucket prefix.
            try wrap { try FS.makeDirectories(settings.url) }
        }
        let target = try remote ?? openRemote(settings)
        try checkCompatible(try RemoteMarker.read(target), target)
        let probe = try remoteCall { try probeConditionalWrites(target) }
        if let why = probe.explanation {
            throw MLVError.refused("\(target.location) cannot be used as a remote: \(why)")
        }
        try wrap {
            try FS.makeDirectories(dir)
            try FS.atomicWrite(dir + "/config", settings.encoded())
        }
    }

    /// Forgets a remote and its cached state (nothing on the remote changes).
    /// - Throws: `.notFound` for an unknown remote.
    public func removeRemote(_ name: String) throws {
        _ = try remoteSettings(name)
        let dir = remoteDirectory(name)
        try wrap {
            try FS.unlink(dir + "/config")
            try FS.fsyncDirectory(dir)
            try FS.removeTree(dir)
        }
    }

    /// Refuses a remote whose format is newer or whose chunker parameters differ.
    func checkCompatible(_ marker: RemoteMarker?, _ remote: any Remote) throws {
        guard let marker else { return }
        if marker.chunker != config.chunker {
            let r = marker.chunker, l = config.chunker
            throw MLVError.refused("\(remote.location) was made with chunker min/avg/max \(r.min)/\(r.avg)/\(r.max) and this store uses \(l.min)/\(l.avg)/\(l.max); chunks would not deduplicate. Clone it instead ('mlv clone').")
        }
    }
}

/// Runs a remote call, turning `RemoteError` into `MLVError.remote`.
@discardableResult
func remoteCall<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as RemoteError { throw MLVError.remote(e) }
}
