import MLVBasics
@testable import MLVKit
import MLVRemote
import MLVTestSupport
import Testing

/// One recorded file-system call: what and on which path.
struct RecordedCall: CustomStringConvertible {
    var op: FSOperation
    var path: String
    var description: String { "\(op) \(path)" }
}

/// Records every write-side call (not opens or reads) on paths under `root` while `body` runs.
func recordCalls(under root: String, _ body: () throws -> Void) throws -> [RecordedCall] {
    let log = Locked<[RecordedCall]>([])
    try FaultInjection.withHook({ op, path in
        if path.hasPrefix(root + "/"), op != .open, op != .read { log.withLock { $0.append(RecordedCall(op: op, path: path)) } }
        return nil
    }, body)
    return log.withLock { $0 }
}

/// Checks that the ref published by `calls[at]` (a link or rename of its final path)
/// refers only to durable data: every file renamed into `packs` before it (pack data and
/// indexes) is followed by a directory fsync of `packs` before it, and none comes after
/// it; the ref's temp file in its directory was fsynced, and not written after, before
/// it was published; and the ref's directory is fsynced after.
func expectDurableBeforeReferenced(_ calls: [RecordedCall], at publish: Int, packs: String,
                                   sourceLocation: SourceLocation = #_sourceLocation) {
    let ref = calls[publish].path, directory = FS.parent(of: ref)
    let before = calls[..<publish], after = calls[(publish + 1)...]
    let packRenames = before.indices.filter { before[$0].op == .rename && FS.parent(of: before[$0].path) == packs }
    #expect(!packRenames.isEmpty, "\(ref) published before any pack was committed", sourceLocation: sourceLocation)
    if let last = packRenames.last {
        #expect(before[last...].contains { $0.op == .fsyncDirectory && $0.path == packs },
                "\(ref) published before \(packs) was fsynced after \(before[last])", sourceLocation: sourceLocation)
    }
    #expect(!after.contains { $0.op == .rename && FS.parent(of: $0.path) == packs },
            "a pack was committed after \(ref) referred to it", sourceLocation: sourceLocation)
    let tempSync = before.lastIndex { $0.op == .fsync && FS.parent(of: $0.path) == directory && $0.path != ref }
    if let tempSync {
        let temp = calls[tempSync].path
        #expect(!calls[(tempSync + 1)..<publish].contains { $0.op == .write && $0.path == temp },
                "\(temp) written after its fsync", sourceLocation: sourceLocation)
    } else {
        Issue.record("\(ref) published from a temp file that was never fsynced", sourceLocation: sourceLocation)
    }
    #expect(after.contains { $0.op == .fsyncDirectory && $0.path == directory },
            "\(directory) not fsynced after \(ref) was published", sourceLocation: sourceLocation)
}

@Suite("durability order: data is durable before anything refers to it")
struct DurabilityOrderTests {
    @Test func addCommitsItsPacksBeforeItLinksTheVersion() throws {
        let t = try TestRepository()
        try t.write("data", ["a.bin": .random(seed: 1, count: 200_000), "b.txt": "b\n"])
        let calls = try recordCalls(under: t.repository.storePath) {
            _ = try t.repository.addDataset(AddDatasetRequest(name: "d", path: t.path("data")))
        }
        let link = try #require(calls.firstIndex { $0.op == .link && $0.path.hasSuffix("/refs/dataset/d/versions/1") }, "\(calls)")
        expectDurableBeforeReferenced(calls, at: link, packs: t.repository.storePath + "/packs")
    }

    @Test func promoteCommitsItsEventBeforeItMovesTheHead() throws {
        let t = try registryRepository()
        let calls = try recordCalls(under: t.repository.storePath) {
            _ = try t.repository.promote("digits@v1", to: "production", message: "go")
        }
        let move = try #require(calls.firstIndex { $0.op == .rename && $0.path.hasSuffix("/refs/model/digits/head") }, "\(calls)")
        expectDurableBeforeReferenced(calls, at: move, packs: t.repository.storePath + "/packs")
    }

    /// On a directory remote: every ref created or replaced comes after every pack (data
    /// and index) is in place and the remote's `packs/` directory fsynced.
    @Test func pushSendsEveryPackBeforeAnyRef() throws {
        let t = try syncSource()
        try FS.makeDirectories(t.path("remote"))
        let remote = try DirectoryRemote(path: t.path("remote"))
        _ = try t.repository.push(to: remote, remoteName: "origin", jobs: 1)
        try t.repository.promote("digits@v3", to: "production", message: "third")
        try t.write("more", ["m.bin": .random(seed: 5, count: 100_000)])
        try t.add("mnist", "more")
        t.repository.pushPackBytes = 32 << 10
        let root = t.path("remote")
        let calls = try recordCalls(under: root) { _ = try t.repository.push(to: remote, remoteName: "origin", jobs: 1) }
        let published = calls.indices.filter {
            let c = calls[$0]
            return c.path.hasPrefix(root + "/refs/") && !FS.baseName(of: c.path).hasPrefix(".")
                && (c.op == .link || c.op == .rename)
        }
        #expect(published.count == 2, "a version created and a head replaced: \(published.map { calls[$0] })")
        for p in published { expectDurableBeforeReferenced(calls, at: p, packs: root + "/packs") }
    }
}
