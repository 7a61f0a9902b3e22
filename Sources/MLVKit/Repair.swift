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
    /// - Returns: one entry per damaged pack moved now, or salvaged from, in name order.
    /// - Throws: `.store(.io)` when a file cannot be read, written or moved.
    public func repair() throws -> [SalvagedPack] {
        let exclusive = try lock(.exclusive)
        defer { withExtendedLifetime(exclusive) {} }
        var moved: [String: (reason: String, files: [String])] = [:]
        try wrap {
            for (name, error) in objects.damagedIndexes {
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
                moved[name] = (error.description, files)
            }
            if !moved.isEmpty {
                try FS.fsyncDirectory(damagedPath)
                try FS.fsyncDirectory(packsPath)
            }
        }
        CrashPoint.hit("repair.moved")
        objects.closeDescriptors()
        try wrap { try objects.reload() }

        let packs = ((try? FS.listDirectory(damagedPath)) ?? []).map(\.name).filter { $0.hasSuffix(".pack") }.sorted()
        var done: [SalvagedPack] = []
        let writer = objects.writer()
        do {
            for file in packs {
                let path = damagedPath + "/" + file
                var salvaged = 0, copied = 0
                let result = try wrap {
                    try PackStore.salvageRecords(packPath: path) { entry, stored in
                        salvaged += 1
                        if !writer.has(entry.id) {
                            try writer.putStored(entry, stored: stored)
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
            try wrap { try writer.commit() }
        } catch {
            writer.abort()
            throw error
        }
        return done
    }
}
