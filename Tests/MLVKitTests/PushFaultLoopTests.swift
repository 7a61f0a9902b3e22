import MLVBasics
@testable import MLVKit
import MLVModel
import MLVRemote
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A store that pushed everything to `remote` once, then made what the loops push: a new
/// version of `mnist`, a new dataset `fresh` and a promotion of `digits@v3`.
func pushScenario(pushingTo remote: (TestRepository) throws -> any Remote) throws -> TestRepository {
    let t = try syncSource()
    _ = try t.repository.push(to: try remote(t), remoteName: "origin", jobs: 1)
    try t.write("data2", ["train/a.csv": "5,6\n", "big.bin": .random(seed: 21, count: 200_000)])
    try t.add("mnist", "data2")
    try t.write("fresh", ["f.bin": .random(seed: 22, count: 150_000), "g.txt": "g\n"])
    try t.add("fresh", "fresh")
    try t.repository.promote("digits@v3", to: "production", message: "third")
    return t
}

/// The remote's refs as `key -> id`, read without any tracking state.
func remoteRefMap(_ repo: Repository, _ remote: any Remote) throws -> [String: ObjectID] {
    Dictionary(uniqueKeysWithValues: try repo.remoteRefs(remote, tracking: RemoteTracking(), jobs: 1).map { ($0.key.key, $0.value.id) })
}

/// What must hold after a push failed at some point, and that a push then finishes.
/// - `before`: the remote's refs before the push; `local`: this store's refs.
func checkAfterFailedPush(round: Int, repo: Repository, remote: any Remote, before: [String: ObjectID],
                          local: [String: ObjectID], error: Error) throws {
    // The local store: untouched refs, clean, and tracking that is whole and names only
    // values the remote had before or has now.
    #expect(repo.fsck().isClean, "round \(round): \(repo.fsck().problems)")
    #expect(try refMap(repo) == local, "round \(round): a local ref moved")
    if let bytes = try FS.readFileIfExists(repo.trackingPath("origin")) {
        #expect((try? JSON.parse(bytes)) != nil, "round \(round): the tracking file is not whole")
        for (key, seen) in RemoteTracking.decode(bytes).refs {
            #expect(seen.id == before[key] || seen.id == local[key], "round \(round): tracking names \(seen.id.short) for \(key)")
        }
    }
    // The remote: nothing it had is lost, every ref is wholly old or new, and everything
    // its refs reach is there (a lazy clone checks every object against the indexes).
    let there = try remoteRefMap(repo, remote)
    for (key, id) in there {
        #expect(id == before[key] || id == local[key], "round \(round): remote \(key) is \(id.short), neither old nor new")
    }
    for key in before.keys { #expect(there[key] != nil, "round \(round): remote lost \(key)") }
    do {
        let (dir, clone) = try cloneOf(remote, lazy: true, inMemory: true)
        _ = dir
        #expect(try refMap(clone) == there, "round \(round)")
        #expect(clone.fsck().isClean, "round \(round): \(clone.fsck().problems)")
    } catch {
        Issue.record("round \(round): a clone of what the failed push left: \(error)")
    }
    // A push without faults finishes, and a full clone of the result verifies.
    _ = try repo.push(to: remote, remoteName: "origin", jobs: 1)
    let (dir, clone) = try cloneOf(remote, inMemory: true)
    _ = dir
    #expect(try refMap(clone) == local, "round \(round)")
    #expect(clone.fsck(full: true).isClean, "round \(round): \(clone.fsck(full: true).problems)")
    #expect(error is MLVError, "round \(round): \(error)")
}

/// Runs `operation` on fresh copies of `template` and `remote` with the n-th remote call
/// failing, for n = 1, 2, ... (every `stride`-th) until the operation completes with no
/// fault injected; `check` looks at each failed round without faults.
/// - Returns: how many rounds failed.
func remoteFaultLoop(template: String, remote: InMemoryRemote, stride: Int = 1, limit: Int = 2000,
                     _ operation: (Repository, any Remote) throws -> Void,
                     check: (_ round: Int, _ copy: StoreCopy, _ remote: InMemoryRemote, _ error: Error) throws -> Void) throws -> Int {
    var n = 1, failures = 0
    while n < limit {
        let copy = try StoreCopy(of: template)
        let repo = try copy.open()
        let replica = remote.copy()
        let faulty = FaultyRemote(replica, failAt: n)
        var thrown: Error?
        do { try operation(repo, faulty) } catch { thrown = error }
        guard faulty.failed != nil else {
            if let thrown { Issue.record("round \(n): no fault injected, yet it failed: \(thrown)") }
            return failures
        }
        if let thrown {
            failures += 1
            try check(n, copy, replica, thrown)
        }
        n += stride
    }
    Issue.record("the operation never completed in \(limit) rounds")
    return failures
}

@Suite("fault loops: push fails at each file-system call and each remote request in turn")
struct PushFaultLoopTests {
    /// Pushes to a directory remote kept inside the store's directory, so one copy holds
    /// both and the file-system hook sees the writes of both sides.
    static let directoryTemplate: Result<TestRepository, Error> = Result {
        try pushScenario { t in
            try FS.makeDirectories(t.path("remote"))
            return try DirectoryRemote(path: t.path("remote"))
        }
    }

    static let memoryRemote = InMemoryRemote(location: "mem-pushloop")
    static let memoryTemplate: Result<TestRepository, Error> = Result { try pushScenario { _ in memoryRemote } }

    /// Small packs, so a push sends several and faults land between them.
    static func push(_ repo: Repository, _ remote: any Remote) throws {
        repo.pushPackBytes = 64 << 10
        _ = try repo.push(to: remote, remoteName: "origin", jobs: 1)
    }

    @Test(arguments: [EIO, ENOSPC], [false, true])
    func pushToADirectory(code: Int32, fromThenOn: Bool) throws {
        let template = try Self.directoryTemplate.get()
        let remote = try DirectoryRemote(path: template.path("remote"))
        let before = try remoteRefMap(template.repository, remote)
        let local = try refMap(template.repository)
        // About 210 calls can fail with EIO and 70 with ENOSPC; the short loop takes every
        // 13th and 5th of them.
        let stride = longFaultLoops ? 1 : (code == ENOSPC ? 5 : 13)
        let failures = try faultLoop(template: template.directory, code: code, operations: failable(code), fromThenOn: fromThenOn,
                                     stride: stride, { repo in
            try Self.push(repo, try DirectoryRemote(path: repo.root + "/remote"))
        }, check: { round, copy, error in
            let repo = try copy.open()
            try checkAfterFailedPush(round: round, repo: repo, remote: try DirectoryRemote(path: repo.root + "/remote"),
                                     before: before, local: local, error: error)
        })
        #expect(failures * stride >= (code == ENOSPC ? 50 : 150), "only \(failures) rounds, every \(stride)th call")
    }

    @Test func pushToMemory() throws {
        let template = try Self.memoryTemplate.get()
        let before = try remoteRefMap(template.repository, Self.memoryRemote)
        let local = try refMap(template.repository)
        // About 15 requests (packs are cut from the local pack files, 64 KiB here); the
        // short loop fails every other one.
        let stride = longFaultLoops ? 1 : 2
        let failures = try remoteFaultLoop(template: template.directory, remote: Self.memoryRemote, stride: stride, { repo, remote in
            try Self.push(repo, remote)
        }, check: { round, copy, remote, error in
            try checkAfterFailedPush(round: round, repo: try copy.open(), remote: remote, before: before, local: local, error: error)
        })
        #expect(failures * stride >= 12, "only \(failures) rounds, every \(stride)th request")
    }
}
