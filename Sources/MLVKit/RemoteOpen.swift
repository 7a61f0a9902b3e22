import MLVBasics
import MLVRemote
import MLVStore

extension Repository {
    /// Connects to a configured remote (nothing is sent yet).
    /// - Throws: `.refused` for a URL no remote kind understands.
    public func openRemote(_ settings: RemoteSettings) throws -> any Remote {
        if let r = remoteOverrides.withLock({ $0[settings.url] }) { return r }
        return try Self.connect(settings)
    }

    /// Connects to the remote `settings` describe: a directory path or `s3://bucket/prefix`.
    /// - Throws: `.remote` when a directory remote's directory is missing; `.refused` for
    ///   a URL no remote kind understands.
    public static func connect(_ settings: RemoteSettings) throws -> any Remote {
        if settings.isS3 {
            // Credentials come from the environment and the AWS shared files, at use.
            return try remoteCall { try S3Remote.fromEnvironment(url: settings.url, endpoint: settings.endpoint, region: settings.region) }
        }
        if settings.url.contains("://") {
            throw MLVError.refused("'\(settings.url)' is neither a directory path nor s3://bucket/prefix")
        }
        return try remoteCall { try DirectoryRemote(path: settings.url) }
    }

    /// The remote called `name` (nil: the default one) and its settings.
    /// - Throws: `.notFound` for an unknown remote.
    public func remote(named name: String?) throws -> (RemoteSettings, any Remote) {
        let settings = try remoteSettings(name)
        return (settings, try openRemote(settings))
    }
}

extension Repository {
    /// Fetches every object `ref` (or its subpath) needs from the first configured remote
    /// that has them all (`origin` first). Returns false when no remote could.
    /// - Throws: `.damaged` when a remote holds one of them corrupt.
    func fetchForCheckout(_ ref: String, subpath: String?) throws -> Bool {
        let all = try remotes()
        guard !all.isEmpty else { return false }
        let r = try resolve(ref)
        for settings in all.filter({ $0.name == "origin" }) + all.filter({ $0.name != "origin" }) {
            guard let remote = try? openRemote(settings) else { continue }
            let packs = try RemotePacks(remote: remote, cache: remoteDirectory(settings.name) + "/packs", jobs: 4)
            // The checked-out tree when its manifest is here, else the whole version.
            let root = (try? treeID(of: r, subpath: subpath)) ?? r.id
            let got = try receive([root], from: remote, packs: packs, metadataOnly: false, jobs: 4)
            if !got.corrupt.isEmpty {
                try reportDamaged(got.corrupt, on: remote, remoteName: settings.name)
            }
            if got.missing.isEmpty { return true }
        }
        return false
    }
}

extension Repository {
    /// The pack indexes cached from each remote (no network), for telling an object left
    /// on a remote by a lazy pull from a lost one.
    func cachedRemoteIndexes() -> [(String, PackIndex)] {
        guard let names = try? FS.listDirectory(remotesPath) else { return [] }
        var out: [(String, PackIndex)] = []
        for remote in names.map(\.name).sorted() {
            let dir = remoteDirectory(remote) + "/packs"
            for e in (try? FS.listDirectory(dir)) ?? [] where e.name.hasSuffix(".idx") {
                let name = String(e.name.dropLast(4))
                if let index = try? PackIndex(indexPath: dir + "/" + e.name, packPath: "packs/\(name).pack", name: name) {
                    out.append((remote, index))
                }
            }
        }
        return out
    }
}
