import MLVBasics
import MLVModel
import MLVStore

/// A recorded run: its id, the id of its manifest, and the manifest.
public struct RunRecord: Sendable {
    public var run: String
    public var id: ObjectID
    public var manifest: RunManifest
}

extension Repository {
    /// A fresh run id: 16 random lowercase hex digits.
    public static func newRunID() -> String {
        var rng = SystemRandomNumberGenerator()
        let value: UInt64 = rng.next()
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: (0..<16).map { i in digits[Int((value >> (60 - 4 * UInt64(i))) & 15)] }, as: UTF8.self)
    }

    /// Stores a finished run's manifest, then creates `refs/runs/<run>`; the objects it
    /// points at must already be committed.
    /// - Throws: `MLVError.refused` when the run already has a record; store errors.
    @discardableResult
    public func recordRun(_ manifest: RunManifest) throws -> ObjectID {
        let guardLock = try lock(.shared)
        defer { withExtendedLifetime(guardLock) {} }
        return try recordRun(manifest, writer: objects.writer())
    }

    /// Adds the run manifest to `writer` (which may hold the objects it points at),
    /// commits it, then creates `refs/runs/<run>`. The caller holds the store's lock.
    /// - Throws: `MLVError.refused` when the run already has a record; store errors.
    func recordRun(_ manifest: RunManifest, writer: PackWriter) throws -> ObjectID {
        let id = try commitManifest(manifest.canonicalBytes(), writer: writer)
        guard try wrap({ try refs.createRun(manifest.run, id: id) }) else {
            throw MLVError.refused("run \(manifest.run) is already recorded")
        }
        updateLineageIndex()
        return id
    }

    /// Decodes a stored run manifest.
    /// - Throws: `MLVError.damaged` when the object is not a run manifest.
    public func runManifest(_ id: ObjectID) throws -> RunManifest {
        let json = try manifestJSON(id)
        do { return try RunManifest(json: json) } catch let e as ModelError {
            throw MLVError.damaged("run manifest \(id.short): \(e.message)")
        }
    }

    /// Every recorded run, oldest start first.
    /// - Throws: store errors; a damaged run record is an error, not skipped.
    public func runs() throws -> [RunRecord] {
        try wrap { try refs.runIDs() }.map { run in
            guard let id = try wrap({ try refs.run(run) }) else { throw MLVError.notFound("run \(run)") }
            return RunRecord(run: run, id: id, manifest: try runManifest(id))
        }.sorted { ($0.manifest.started, $0.run) < ($1.manifest.started, $1.run) }
    }

    /// Finds a run by its id, a unique prefix of it (at least 4 hex digits), or its name
    /// (the newest run with that name).
    /// - Throws: `MLVError.unknownRef` (with close names), `.ambiguousPrefix`.
    public func resolveRun(_ text: String) throws -> RunRecord {
        let ids = try wrap { try refs.runIDs() }
        let isHex = !text.isEmpty && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
        if isHex && text.utf8.count >= 4 {
            let matches = ids.filter { $0.hasPrefix(text) }
            if matches.count > 1 {
                throw MLVError.ambiguousPrefix(text, candidates: matches)
            }
            if let run = matches.first, let id = try wrap({ try refs.run(run) }) {
                return RunRecord(run: run, id: id, manifest: try runManifest(id))
            }
        }
        let named = try runs().filter { $0.manifest.name == text }
        if let newest = named.last { return newest }
        let names = Set(try runs().map(\.manifest.name)).sorted()
        throw MLVError.unknownRef("run \(text)", suggestions: names.filter { $0.hasPrefix(text.prefix(2)) })
    }
}
