import MLVBasics
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// What `repair` did with one pack whose index failed its checks.
public struct SalvagedPack: Sendable {
    /// The pack's name (the hex after `pack-`).
    public var name: String
    /// Why its index was refused.
    public var reason: String
    /// Records that passed every check and were copied into a new pack.
    public var recordsSalvaged: Int
    /// Records that failed a check and were left behind.
    public var recordsLost: Int
    /// Whether the pack ends in a record cut short or a header that makes no sense.
    public var truncated: Bool
    /// Where the damaged files went, relative to the repository root.
    public var movedTo: [String]
    /// Objects whose only copy was damaged, by id: known when the pack's index was sound
    /// (a damaged index leaves only the count). A remote that holds them gives them back:
    /// `mlv pull`.
    public var lostObjects: [ObjectID] = []
}

extension Repository {
    /// `.mlv/damaged`: where repair moves files that fail their checks. Never deleted by mlv.
    var damagedPath: String { storePath + "/damaged" }

    /// Moves every pack whose index fails its checks, and the index, into `.mlv/damaged/`,
    /// then copies each record of every pack there that still verifies (header, checksum,
    /// exact decompression, SHA-256) and that the store lacks into a new pack. Nothing is
    /// deleted. The files move first so the new pack, which for an intact pack has the
    /// very name of the damaged one, never meets them; a crash in between leaves them in
    /// `.mlv/damaged/`, where the next repair salvages them again. Open the repository
    /// with `tolerateDamage` to reach a store whose damaged index stops it from opening.
    ///
    /// A pack whose index is sound but one of whose records fails those checks (a bit
    /// flip in the pack data) is read record by record through its index: every sound
    /// record no other pack holds is copied into the new pack, which is committed before
    /// the damaged pack and its index move into `.mlv/damaged/`, so a crash in between
    /// leaves duplicates and the next repair finishes the move. The objects whose only
    /// copy was damaged are named in `lostObjects`.
    /// - Returns: one entry per damaged pack moved now, or salvaged from, in name order.
    /// - Throws: `.store(.io)` when a file cannot be read, written or moved.
    public func repair() throws -> [SalvagedPack] {
        let exclusive = try lock(.exclusive)
        defer { withExtendedLifetime(exclusive) {} }
        var moved: [String: (reason: String, files: [String])] = [:]
        try wrap {
            for (name, error) in objects.damagedIndexes {
                moved[name] = (error.description, try moveAside(name))
            }
            // A repair stopped between moving an index and its pack left the pack behind
            // without an index, where gc would take it for a leftover: move it too.
            for file in ((try? FS.listDirectory(damagedPath)) ?? []).map(\.name) where file.hasSuffix(".idx") {
                let name = String(file.dropFirst(5).prefix(64))
                if FS.exists(packsPath + "/pack-\(name).pack") && !FS.exists(packsPath + "/pack-\(name).idx") {
                    _ = try moveAside(name)
                }
            }
        }
        CrashPoint.hit("repair.moved")
        objects.closeDescriptors()
        try wrap { try objects.reload() }
        // Packs with a sound index and a damaged record.
        var retire: [(index: PackIndex, bad: [(entry: IndexEntry, error: StoreError)])] = []
        for index in objects.packIndexes {
            let bad = try wrap { try objects.damagedRecords(index) }
            if !bad.isEmpty { retire.append((index, bad)) }
        }

        let packs = ((try? FS.listDirectory(damagedPath)) ?? []).map(\.name).filter { $0.hasSuffix(".pack") }.sorted()
        var done: [SalvagedPack] = []
        let retiring = Set(retire.map(\.index.name))
        let writer = objects.writer()
        // A copy in a pack about to be retired does not count: it may be the damaged one.
        var copiedNow = Set<ObjectID>()
        func heldSoundly(_ id: ObjectID) -> Bool {
            copiedNow.contains(id) || objects.packIndexes.contains { !retiring.contains($0.name) && $0.find(id) != nil }
        }
        do {
            for file in packs {
                let path = damagedPath + "/" + file
                var salvaged = 0, copied = 0
                let result = try wrap {
                    try PackStore.salvageRecords(packPath: path) { entry, stored in
                        salvaged += 1
                        if !heldSoundly(entry.id) {
                            try writer.putStored(entry, stored: stored)
                            copiedNow.insert(entry.id)
                            copied += 1
                        }
                    }
                }
                let name = String(file.dropFirst(5).prefix(64))
                let movedNow = moved[name].flatMap { m in m.files.contains(path) ? m : nil }
                guard movedNow != nil || copied > 0 else { continue }
                done.append(SalvagedPack(name: name, reason: movedNow?.reason ?? "left in .mlv/damaged by an earlier repair",
                                         recordsSalvaged: salvaged, recordsLost: result.lost, truncated: result.truncated,
                                         movedTo: (movedNow?.files ?? [path]).map(displayPath)))
            }
            for (index, bad) in retire {
                let badIDs = Set(bad.map(\.entry.id))
                for e in index.entries where !badIDs.contains(e.id) && !heldSoundly(e.id) {
                    let stored = try wrap { try objects.readRecordForRepack(index, e) }
                    try stored.withUnsafeBytes { raw in try wrap { try writer.putStored(e, stored: raw) } }
                    copiedNow.insert(e.id)
                }
            }
            try wrap { try writer.commit() }
            for (index, bad) in retire {
                let first = bad[0]
                let lost = bad.map(\.entry.id).filter { !heldSoundly($0) }.sorted()
                done.append(SalvagedPack(name: index.name, reason: "\(bad.count) record(s) fail their checks behind a sound index, first \(first.error)",
                                         recordsSalvaged: index.count - bad.count, recordsLost: bad.count, truncated: false,
                                         movedTo: [], lostObjects: lost))
            }
        } catch {
            writer.abort()
            throw error
        }
        if !retire.isEmpty {
            CrashPoint.hit("repair.records-copied")
            objects.closeDescriptors()
            for i in done.indices where retiring.contains(done[i].name) {
                done[i].movedTo = try wrap { try moveAside(done[i].name) }.map(displayPath)
            }
            try wrap { try objects.reload() }
        }
        return done.sorted { $0.name < $1.name }
    }

    /// Renames a pack's index, then its data, into `.mlv/damaged/` under names not taken
    /// there yet, and fsyncs both directories. Returns the new paths.
    private func moveAside(_ name: String) throws -> [String] {
        try FS.makeDirectories(damagedPath)
        var files: [String] = []
        for ext in ["idx", "pack"] {
            let path = packsPath + "/pack-\(name).\(ext)"
            guard FS.exists(path) else { continue }
            var destination = damagedPath + "/pack-\(name).\(ext)"
            var n = 1
            while FS.exists(destination) {
                destination = damagedPath + "/pack-\(name).\(n).\(ext)"
                n += 1
            }
            try FS.rename(path, destination)
            files.append(destination)
        }
        if !files.isEmpty {
            try FS.fsyncDirectory(damagedPath)
            try FS.fsyncDirectory(packsPath)
        }
        return files
    }
}
