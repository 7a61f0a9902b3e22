import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The pid of a process that has exited (and been reaped), so nothing runs under it.
func deadPid() throws -> Int32 {
    try runProgram("/bin/true", [], in: "/").pid
}

@Suite("stale locks and mlv unlock")
struct UnlockTests {
    func writeLock(_ path: String, pid: Int32, host: String = hostName(), since: Int64 = Int64(time(nil)) - 90) throws {
        try Scenario.write(.text("\(pid) \(host) \(since)\n"), at: path)
    }

    @Test func aLockLeftByADeadProcessIsNamedThenRemoved() throws {
        let t = try registryRepository()
        let lock = t.repository.storePath + "/refs/model/digits/head.lock"
        let pid = try deadPid()
        try writeLock(lock, pid: pid)
        let packs = try t.packFiles()
        // The change is refused at once, naming pid, host and age, and writes nothing.
        expectMLVError({ if case .store(.locked) = $0 { true } else { false } },
                       mentions: ["head.lock", "pid \(pid)", "on \(hostName())", "s ago", "no longer running", "mlv unlock"]) {
            try t.repository.promote("digits@v1", to: "production", message: "x")
        }
        #expect(try t.packFiles() == packs)

        let reports = try t.repository.unlock(force: false)
        #expect(reports.count == 1)
        #expect(reports.first?.outcome == .removed && reports.first?.owner?.pid == pid)
        #expect(reports.first?.path == ".mlv/refs/model/digits/head.lock")
        #expect(!FS.exists(lock))
        try t.repository.promote("digits@v1", to: "production", message: "x")
        #expect(try t.repository.unlock(force: false).isEmpty)
    }

    @Test func aLockWhoseOwnerRunsIsKeptEvenWithForce() throws {
        let t = try registryRepository()
        let lock = t.repository.storePath + "/stages.lock"
        try writeLock(lock, pid: getpid(), since: Int64(time(nil)))
        for force in [false, true] {
            let reports = try t.repository.unlock(force: force)
            #expect(reports.map(\.outcome) == [.ownerAlive])
            #expect(FS.exists(lock))
        }
        // What a change waiting for it reports when it gives up (after its timeout).
        let owner = try #require(LockFile.owner(of: lock))
        let message = LockFile.Failure.held(path: lock, owner: owner).description
        #expect(message.contains("pid \(getpid()) on \(hostName())") && message.contains("s ago"), "\(message)")
        #expect(!message.contains("no longer running"))
    }

    /// A lock naming a pid that runs now but started after the lock was taken (the pid
    /// was reused, after a reboot say) is stale.
    @Test func aLockWhosePidWasReusedIsStale() throws {
        let t = try registryRepository()
        let lock = t.repository.storePath + "/stages.lock"
        try writeLock(lock, pid: getpid(), since: 1_000_000_000)  // 2001, long before this process
        #expect(!LockFile.isAlive(try #require(LockFile.owner(of: lock))))
        #expect(try t.repository.unlock(force: false).map(\.outcome) == [.removed])
        #expect(!FS.exists(lock))
    }

    @Test func aLockFromAnotherHostOrNamingNoOwnerNeedsForce() throws {
        let t = try registryRepository()
        let foreign = t.repository.storePath + "/refs/model/digits/head.lock"
        let empty = t.repository.storePath + "/refs/dataset/mnist/aliases/latest.lock"
        try writeLock(foreign, pid: 4242, host: "elsewhere.example")
        try Scenario.write(.text(""), at: empty)
        let kept = try t.repository.unlock(force: false)
        #expect(kept.map(\.outcome) == [.cannotCheck, .cannotCheck])
        #expect(kept.first { $0.path.hasSuffix("head.lock") }?.owner?.host == "elsewhere.example")
        #expect(FS.exists(foreign) && FS.exists(empty))
        let forced = try t.repository.unlock(force: true)
        #expect(forced.map(\.outcome) == [.forced, .forced])
        #expect(!FS.exists(foreign) && !FS.exists(empty))
    }
}
