import MLVBasics
import MLVRemote
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("DirectoryRemote", .serialized)
struct DirectoryRemoteTests {
    @Test("a missing directory is refused, naming it")
    func missingDirectory() throws {
        let dir = try TemporaryDirectory(prefix: "mlv-remote")
        try RemoteConformance.expectKind(.notFound, "a missing root") { _ = try DirectoryRemote(path: dir.appending("nope")) }
    }

    @Test("writes leave no temp or lock files behind, and hidden files never list")
    func noLeftovers() throws {
        let dir = try TemporaryDirectory(prefix: "mlv-remote")
        let remote = try DirectoryRemote(path: dir.path)
        let first = try remote.create("refs/x", [1])
        _ = try remote.replace("refs/x", [2], expected: first)
        _ = try remote.put("refs/y", [3])
        try remote.delete("refs/y")
        #expect(try dir.list("refs") == ["x"])
        try FS.atomicWrite(dir.appending("refs/.stray.tmp-1"), [9], durable: false)
        #expect(try remote.list(prefix: "").map(\.key) == ["refs/x"])
    }

    @Test("a failed rename leaves the old object and no temp file")
    func failedRename() throws {
        let dir = try TemporaryDirectory(prefix: "mlv-remote")
        let remote = try DirectoryRemote(path: dir.path)
        let etag = try remote.create("refs/x", Array("old".utf8))
        let root = dir.path
        try FaultInjection.withHook({ op, path in op == .rename && path.hasPrefix(root) ? EIO : nil }) {
            try RemoteConformance.expectKind(.failed, "replace with a failing rename") {
                _ = try remote.replace("refs/x", Array("new".utf8), expected: etag)
            }
        }
        #expect(try remote.get("refs/x") == RemoteObject(bytes: Array("old".utf8), etag: etag))
        #expect(try dir.list("refs") == ["x"])
    }

    @Test("a planted symlink is neither read nor written through")
    func symlinks() throws {
        let dir = try TemporaryDirectory(prefix: "mlv-remote")
        let outside = try TemporaryDirectory(prefix: "mlv-outside")
        try FS.atomicWrite(outside.appending("secret"), Array("secret".utf8), durable: false)
        let remote = try DirectoryRemote(path: dir.path)
        try FS.makeDirectories(dir.appending("refs"))
        try FS.symlink(target: outside.appending("secret"), at: dir.appending("refs/link"))
        try FS.symlink(target: outside.path, at: dir.appending("escape"))
        try RemoteConformance.expectKind(.failed, "get of a symlink") { _ = try remote.get("refs/link") }
        try RemoteConformance.expectKind(.failed, "put through a symlinked directory") { _ = try remote.put("escape/file", [1]) }
        try RemoteConformance.expectKind(.failed, "create through a symlinked directory") { _ = try remote.create("escape/file", [1]) }
        #expect(try outside.list() == ["secret"])
        #expect(try remote.list(prefix: "") == [])
    }

    @Test("a lock left by a dead writer is reported with its owner, not broken")
    func staleLock() throws {
        let dir = try TemporaryDirectory(prefix: "mlv-remote")
        let remote = try DirectoryRemote(path: dir.path, lockTimeoutMilliseconds: 200)
        let etag = try remote.create("refs/x", [1])
        try FS.atomicWrite(dir.appending("refs/.x.lock"), Array("999999 elsewhere 1\n".utf8), durable: false)
        let start = monotonicMilliseconds()
        do {
            _ = try remote.replace("refs/x", [2], expected: etag)
            Issue.record("replace went through a held lock")
        } catch let e as RemoteError {
            #expect(e.kind == .failed)
            #expect("\(e)".contains(".x.lock"))
            #expect("\(e)".contains("pid 999999 on elsewhere"))
        }
        #expect(monotonicMilliseconds() - start < 5_000)
        #expect(try remote.get("refs/x")?.bytes == [1])
    }
}
