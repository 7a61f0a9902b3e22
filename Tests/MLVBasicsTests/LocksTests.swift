import MLVBasics
import MLVTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("LockFile")
struct LockFileTests {
    @Test("a second acquire times out with held, naming this process as the owner")
    func secondAcquireTimesOut() throws {
        let dir = try TemporaryDirectory()
        let path = dir.appending("refs.lock")
        let lock = try LockFile.acquire(path, timeoutMilliseconds: 0)
        let owner = try #require(LockFile.owner(of: path))
        #expect(owner.pid == getpid())
        #expect(owner.host == hostName())
        #expect(LockFile.isAlive(owner))

        let error = #expect(throws: LockFile.Failure.self) { try LockFile.acquire(path, timeoutMilliseconds: 20) }
        guard case .held(let heldPath, let heldOwner)? = error else {
            Issue.record("expected held, got \(String(describing: error))")
            return
        }
        #expect(heldPath == path)
        #expect(heldOwner == owner)
        let message = "\(error!)"
        #expect(message.contains(path))
        #expect(message.contains("pid \(getpid()) on \(hostName())"))
        #expect(message.contains("s ago"))

        lock.release()
        #expect(!FS.exists(path))
        let again = try LockFile.acquire(path, timeoutMilliseconds: 0)
        again.release()
        again.release()
    }

    @Test("a lock file's owner is parsed when well formed, nil otherwise")
    func ownerParsing() throws {
        let dir = try TemporaryDirectory()
        let path = dir.appending("x.lock")
        try FS.atomicWrite(path, Array("77 other-host 1700000000\n".utf8), durable: false)
        let owner = try #require(LockFile.owner(of: path))
        #expect(owner.pid == 77)
        #expect(owner.host == "other-host")
        #expect(owner.since == 1_700_000_000)
        #expect(LockFile.isAlive(owner), "another host: assume alive")
        for text in ["", "77\n", "x host 1\n", "77 host\n", "77 host soon\n"] {
            try FS.atomicWrite(path, Array(text.utf8), durable: false)
            #expect(LockFile.owner(of: path) == nil, "\(text)")
        }
        #expect(LockFile.owner(of: dir.appending("missing.lock")) == nil)
        // An unreadable owner is still a held lock.
        let error = #expect(throws: LockFile.Failure.self) { try LockFile.acquire(path, timeoutMilliseconds: 0) }
        guard case .held(_, nil)? = error else {
            Issue.record("expected held without owner, got \(String(describing: error))")
            return
        }
    }

    @Test("a lock in a missing directory is a system error, not held")
    func systemError() throws {
        let dir = try TemporaryDirectory()
        let error = #expect(throws: LockFile.Failure.self) {
            try LockFile.acquire(dir.appending("missing/x.lock"), timeoutMilliseconds: 0)
        }
        guard case .system(let e)? = error else {
            Issue.record("expected system, got \(String(describing: error))")
            return
        }
        #expect(e.isNotFound)
    }
}

@Suite("FileLock")
struct FileLockTests {
    /// A lock that cannot be taken closes its descriptor once. Closed in the initializer
    /// and again by the `deinit` that a class initializer throwing after setting every
    /// property runs, the second close would hit whatever another thread had opened
    /// under that number meanwhile.
    @Test func aFailedLockClosesItsDescriptorOnce() throws {
        let dir = try TemporaryDirectory()
        let path = dir.appending("store.lock")
        let before = FS.unopenCloses
        let thrown = FaultInjection.withHook({ op, p in op == .flock && p == path ? ENOLCK : nil }) {
            do { _ = try FileLock(path, mode: .exclusive); return false } catch { return true }
        }
        #expect(thrown)
        #expect(FS.unopenCloses == before, "the lock file's descriptor was closed a second time")
        _ = try FileLock(path, mode: .exclusive)
    }

    /// Tries a non-blocking flock on a separate open file description.
    /// Close-on-exec: a child another test spawns meanwhile would keep the description,
    /// and with it any lock taken here, after this close.
    private func canLock(_ path: String, _ operation: Int32) -> Bool {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        defer { close(fd) }
        return flock(fd, operation | LOCK_NB) == 0
    }

    @Test("shared locks coexist and keep out exclusive ones; an exclusive lock keeps out both")
    func sharedAndExclusive() throws {
        let dir = try TemporaryDirectory()
        let path = dir.appending("gc.lock")
        do {
            let first = try FileLock(path, mode: .shared)
            let second = try FileLock(path, mode: .shared)
            #expect(FS.exists(path))
            #expect(canLock(path, LOCK_SH))
            #expect(!canLock(path, LOCK_EX))
            _ = (first, second)
        }
        #expect(canLock(path, LOCK_EX), "released when the locks go away")
        do {
            let exclusive = try FileLock(path, mode: .exclusive)
            #expect(!canLock(path, LOCK_SH))
            #expect(!canLock(path, LOCK_EX))
            _ = exclusive
        }
        #expect(canLock(path, LOCK_EX))
    }

    @Test("a lock in a missing directory throws naming the path")
    func missingDirectory() throws {
        let dir = try TemporaryDirectory()
        let error = #expect(throws: FileSystemError.self) { try FileLock(dir.appending("missing/gc.lock"), mode: .shared) }
        #expect(error?.path == dir.appending("missing/gc.lock"))
    }
}
