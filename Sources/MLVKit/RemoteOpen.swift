import MLVBasics
import MLVRemote

extension Repository {
    /// Connects to a configured remote (nothing is sent yet).
    /// - Throws: `.refused` for a URL no remote kind understands.
    public func openRemote(_ settings: RemoteSettings) throws -> any Remote {
        if let r = remoteOverrides.withLock({ $0[settings.url] }) { return r }
        throw MLVError.refused("remote kind of '\(settings.url)' is not available in this build")
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
