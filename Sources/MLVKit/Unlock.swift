import MLVBasics
import MLVStore
#if canImport(Glibc)
import Glibc
#endif

/// One lock file found by `unlock`, and what was done with it.
public struct LockReport: Sendable {
    public enum Outcome: String, Sendable {
        /// Its owner is not running on this host: the lock was stale and is gone.
        case removed
        /// Removed with `force`: its owner is on another host (or unreadable) and could not be checked.
        case forced
        /// Its owner still runs on this host: kept.
        case ownerAlive = "owner-alive"
        /// Its owner is on another host (or the file names none): kept without `force`.
        case cannotCheck = "cannot-check"
    }

    /// The lock file, relative to the repository root.
    public var path: String
    /// Who created it, nil when the file does not name an owner (cut short by a crash).
    public var owner: LockFile.Owner?
    public var outcome: Outcome
    public var wasRemoved: Bool { outcome == .removed || outcome == .forced }
}

extension Repository {
    /// Every lock file of the store (`*.lock` under `refs`, and `stages.lock`), sorted.
    /// `.mlv/lock` is not one: it is only ever `flock`ed, and the kernel drops a flock
    /// when its process dies.
    public func lockFiles() throws -> [String] {
        var found: [String] = []
        func walk(_ dir: String) throws {
            for e in try FS.listDirectory(dir) {
                let path = dir + "/" + e.name
                guard let st = try FS.lstat(path) else { continue }
                if (st.st_mode & S_IFMT) == S_IFDIR {
                    try walk(path)
                } else if e.name.hasSuffix(".lock") {
                    found.append(path)
                }
            }
        }
        try wrap {
            if FS.isDirectory(storePath + "/refs") { try walk(storePath + "/refs") }
        }
        if FS.exists(stagesPath + ".lock") { found.append(stagesPath + ".lock") }
        return found.sorted()
    }

    /// Removes lock files left behind by processes that died holding them.
    ///
    /// A lock whose owner runs on this host is never removed. A lock from another host
    /// (whose process cannot be checked from here) or one that names no owner is removed
    /// only with `force`.
    /// - Returns: every lock file found, with what was done to it.
    /// - Throws: `.store(.io)` when a lock cannot be read or removed.
    public func unlock(force: Bool) throws -> [LockReport] {
        try lockFiles().map { path in
            let owner = LockFile.owner(of: path)
            let outcome: LockReport.Outcome
            if let owner, owner.host == hostName() {
                outcome = LockFile.isAlive(owner) ? .ownerAlive : .removed
            } else {
                outcome = force ? .forced : .cannotCheck
            }
            if outcome == .removed || outcome == .forced {
                try wrap { try FS.unlink(path) }
            }
            return LockReport(path: displayPath(path), owner: owner, outcome: outcome)
        }
    }
}
