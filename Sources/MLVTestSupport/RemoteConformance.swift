import MLVBasics
import MLVRemote
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The behaviour every `Remote` must show, as checks that take a factory of fresh, empty
/// remotes (restic's `internal/backend/test/suite.go` idea; same shape as
/// `ObjectStoreConformance`).
///
/// Run every check against a backend with
/// `@Test(arguments: RemoteConformance.checks) func f(_ c: RemoteConformance.Check) throws { try c.run(factory) }`.
/// Nothing here assumes that writing the same bytes again changes the entity tag (S3's
/// does not), only that writing different bytes does.
public enum RemoteConformance {
    public typealias Factory = () throws -> any Remote
    public typealias Check = ConformanceCheck<any Remote>

    public static let checks: [Check] = [
        Check("absent keys: get and head give nil, getRange and download throw notFound", absentKeys),
        Check("put, get, head and list agree on bytes, size and entity tag", putGetHead),
        Check("the empty object", emptyObject),
        Check("keys with spaces and URL-special characters round trip", specialCharacterKeys),
        Check("ranges: inside, to the end, past the end, at and after the end", ranges),
        Check("upload and download stream a 6 MiB file", largeFiles),
        Check("put from pieces: bytes and ranges of open local files, concatenated", putPieces),
        Check("create twice: the second is preconditionFailed and changes nothing", createTwice),
        Check("replace with the current tag moves; a stale tag or absent key is preconditionFailed", replaceConditions),
        Check("put overwrites and changes the tag", putOverwrites),
        Check("list by prefix: sorted by bytes, a prefix is a string prefix", listByPrefix),
        Check("delete removes, and deleting an absent key is fine", deleteIdempotent),
        Check("invalid keys are refused before anything is touched", invalidKeys),
        Check("8 threads create one key: exactly one wins", concurrentCreate),
        Check("4 threads increment one counter by replace: no update is lost", concurrentReplace),
    ]

    // MARK: checks

    public static func absentKeys(_ make: Factory) throws {
        let remote = try make()
        _ = try remote.put("present/one", Array("1".utf8))
        #expect(try remote.get("absent") == nil)
        #expect(try remote.head("absent") == nil)
        #expect(try remote.get("present/on") == nil)
        #expect(try remote.head("present/one/two") == nil)
        try expectKind(.notFound, "getRange of an absent key") { _ = try remote.getRange("absent", offset: 0, length: 1) }
        let dir = try TemporaryDirectory(prefix: "mlv-remote")
        try expectKind(.notFound, "download of an absent key") { _ = try remote.download("absent", to: dir.appending("out")) }
    }

    public static func putGetHead(_ make: Factory) throws {
        let remote = try make()
        let bytes = splitmix64Bytes(seed: 1, count: 10_000)
        let etag = try remote.put("packs/p1.pack", bytes)
        #expect(!etag.isEmpty)
        let got = try #require(try remote.get("packs/p1.pack"))
        #expect(got.bytes == bytes)
        #expect(got.etag == etag)
        #expect(try remote.head("packs/p1.pack") == RemoteEntry(key: "packs/p1.pack", size: 10_000, etag: etag))
        #expect(try remote.list(prefix: "packs/") == [RemoteEntry(key: "packs/p1.pack", size: 10_000, etag: etag)])
    }

    public static func emptyObject(_ make: Factory) throws {
        let remote = try make()
        let etag = try remote.put("empty", [])
        #expect(try remote.get("empty") == RemoteObject(bytes: [], etag: etag))
        #expect(try remote.head("empty")?.size == 0)
        #expect(try remote.getRange("empty", offset: 0, length: 10) == [])
        let created = try remote.create("empty-created", [])
        #expect(try remote.head("empty-created")?.etag == created)
    }

    public static func specialCharacterKeys(_ make: Factory) throws {
        let remote = try make()
        let keys = ["a b/c d", "plus+equals=", "percent%20sign", "tilde~comma,at@", "semi;colon:amp&", "q?hash#"]
        for (i, key) in keys.enumerated() {
            _ = try remote.put(key, Array("value \(i)".utf8))
        }
        for (i, key) in keys.enumerated() {
            #expect(try remote.get(key)?.bytes == Array("value \(i)".utf8), "\(key)")
        }
        #expect(try remote.list(prefix: "").map(\.key) == keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(try remote.list(prefix: "a b/").map(\.key) == ["a b/c d"])
    }

    public static func ranges(_ make: Factory) throws {
        let remote = try make()
        let bytes = splitmix64Bytes(seed: 2, count: 1000)
        _ = try remote.put("r", bytes)
        #expect(try remote.getRange("r", offset: 0, length: 10) == Array(bytes[0..<10]))
        #expect(try remote.getRange("r", offset: 500, length: 100) == Array(bytes[500..<600]))
        #expect(try remote.getRange("r", offset: 990, length: 10) == Array(bytes[990..<1000]))
        #expect(try remote.getRange("r", offset: 990, length: 50) == Array(bytes[990..<1000]))
        #expect(try remote.getRange("r", offset: 0, length: 5000) == bytes)
        #expect(try remote.getRange("r", offset: 1000, length: 10) == [])
        #expect(try remote.getRange("r", offset: 5000, length: 10) == [])
        #expect(try remote.getRange("r", offset: 10, length: 0) == [])
        try expectKind(.failed, "a negative offset") { _ = try remote.getRange("r", offset: -1, length: 1) }
    }

    public static func largeFiles(_ make: Factory) throws {
        let remote = try make()
        let dir = try TemporaryDirectory(prefix: "mlv-remote")
        let bytes = splitmix64Bytes(seed: 3, count: 6 << 20 | 12345)
        let source = dir.appending("source")
        try FS.atomicWrite(source, bytes, durable: false)
        let etag = try remote.upload("packs/big.pack", from: source)
        #expect(try remote.head("packs/big.pack") == RemoteEntry(key: "packs/big.pack", size: Int64(bytes.count), etag: etag))
        let target = dir.appending("target")
        try FS.atomicWrite(target, Array(repeating: 7, count: 9 << 20), durable: false)  // longer: must be truncated
        #expect(try remote.download("packs/big.pack", to: target) == Int64(bytes.count))
        #expect(try FS.readFile(target) == bytes)
        #expect(try remote.getRange("packs/big.pack", offset: 5 << 20, length: 100) == Array(bytes[(5 << 20)..<((5 << 20) + 100)]))
        try expectKind(.failed, "upload of a missing local file") {
            _ = try remote.upload("packs/none.pack", from: dir.appending("missing"))
        }
        #expect(try remote.head("packs/none.pack") == nil)
    }

    public static func putPieces(_ make: Factory) throws {
        let remote = try make()
        let dir = try TemporaryDirectory(prefix: "mlv-remote")
        let file = splitmix64Bytes(seed: 4, count: 3 << 20)
        try FS.atomicWrite(dir.appending("source"), file, durable: false)
        let fd = try FS.open(dir.appending("source"), O_RDONLY)
        defer { FS.close(fd) }
        let head = Array("MLVPACK".utf8)
        let pieces: [UploadPiece] = [.bytes(head), .file(fd: fd, path: dir.appending("source"), offset: 1 << 20, length: 2 << 20),
                                     .file(fd: fd, path: dir.appending("source"), offset: 5, length: 10), .bytes([])]
        let etag = try remote.put("packs/pieces.pack", pieces: pieces)
        let expected = head + file[(1 << 20)..<(3 << 20)] + file[5..<15]
        #expect(try remote.get("packs/pieces.pack") == RemoteObject(bytes: expected, etag: etag))
        // A range past the end of the file fails and leaves nothing under the key.
        try expectKind(.failed, "a range past the end of the local file") {
            _ = try remote.put("packs/short.pack", pieces: [.file(fd: fd, path: dir.appending("source"), offset: 3 << 20, length: 10)])
        }
        #expect(try remote.head("packs/short.pack") == nil)
    }

    public static func createTwice(_ make: Factory) throws {
        let remote = try make()
        let etag = try remote.create("refs/x", Array("first".utf8))
        try expectKind(.preconditionFailed, "a second create") { _ = try remote.create("refs/x", Array("second".utf8)) }
        #expect(try remote.get("refs/x") == RemoteObject(bytes: Array("first".utf8), etag: etag))
        try remote.delete("refs/x")
        _ = try remote.create("refs/x", Array("again".utf8))
        #expect(try remote.get("refs/x")?.bytes == Array("again".utf8))
    }

    public static func replaceConditions(_ make: Factory) throws {
        let remote = try make()
        let first = try remote.create("refs/head", Array("one".utf8))
        let second = try remote.replace("refs/head", Array("two".utf8), expected: first)
        #expect(second != first)
        #expect(try remote.get("refs/head") == RemoteObject(bytes: Array("two".utf8), etag: second))
        try expectKind(.preconditionFailed, "replace with a stale tag") {
            _ = try remote.replace("refs/head", Array("three".utf8), expected: first)
        }
        try expectKind(.preconditionFailed, "replace with a made-up tag") {
            _ = try remote.replace("refs/head", Array("three".utf8), expected: "\"0123456789abcdef\"")
        }
        #expect(try remote.get("refs/head")?.bytes == Array("two".utf8))
        try expectKind(.preconditionFailed, "replace of an absent key") {
            _ = try remote.replace("refs/none", Array("x".utf8), expected: second)
        }
        #expect(try remote.head("refs/none") == nil)
        let third = try remote.replace("refs/head", Array("three".utf8), expected: second)
        #expect(try remote.head("refs/head")?.etag == third)
    }

    public static func putOverwrites(_ make: Factory) throws {
        let remote = try make()
        let first = try remote.put("k", Array("one".utf8))
        let second = try remote.put("k", Array("two".utf8))
        #expect(first != second)
        #expect(try remote.get("k") == RemoteObject(bytes: Array("two".utf8), etag: second))
    }

    public static func listByPrefix(_ make: Factory) throws {
        let remote = try make()
        let keys = ["refs/a/2", "refs/ab/1", "refs/a/1", "refs/a-b", "refs/b", "packs/x.pack", "refs/a/sub/3"]
        for key in keys { _ = try remote.put(key, Array(key.utf8)) }
        // '-' (0x2D) sorts before '/' (0x2F): byte order, not a directory walk.
        #expect(try remote.list(prefix: "refs/a/").map(\.key) == ["refs/a/1", "refs/a/2", "refs/a/sub/3"])
        #expect(try remote.list(prefix: "refs/a").map(\.key) == ["refs/a-b", "refs/a/1", "refs/a/2", "refs/a/sub/3", "refs/ab/1"])
        #expect(try remote.list(prefix: "refs/").count == 6)
        #expect(try remote.list(prefix: "").map(\.key) == keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(try remote.list(prefix: "nothing/") == [])
        #expect(try remote.list(prefix: "refs/b") == [RemoteEntry(key: "refs/b", size: 6, etag: try #require(try remote.head("refs/b")).etag)])
    }

    public static func deleteIdempotent(_ make: Factory) throws {
        let remote = try make()
        try remote.delete("never/was")
        _ = try remote.put("d/one", [1])
        _ = try remote.put("d/two", [2])
        try remote.delete("d/one")
        #expect(try remote.head("d/one") == nil)
        #expect(try remote.get("d/one") == nil)
        #expect(try remote.list(prefix: "d/").map(\.key) == ["d/two"])
        try remote.delete("d/one")
    }

    public static func invalidKeys(_ make: Factory) throws {
        let remote = try make()
        let bad = ["", "/abs", "a//b", "a/", "../up", "a/../b", "a/./b", ".hidden", "a/.lock", "tab\tkey", "nl\n", "back\\slash",
                   "caf\u{E9}", String(repeating: "k", count: 1025)]
        for key in bad {
            try expectKind(.failed, "put of \(key.debugDescription)") { _ = try remote.put(key, [1]) }
            try expectKind(.failed, "get of \(key.debugDescription)") { _ = try remote.get(key) }
            try expectKind(.failed, "create of \(key.debugDescription)") { _ = try remote.create(key, [1]) }
            try expectKind(.failed, "delete of \(key.debugDescription)") { try remote.delete(key) }
        }
        try expectKind(.failed, "a prefix with '..'") { _ = try remote.list(prefix: "../") }
        #expect(try remote.list(prefix: "") == [])
    }

    public static func concurrentCreate(_ make: Factory) throws {
        let remote = try make()
        let winners = Locked<[Int]>([])
        let unexpected = Locked<[String]>([])
        Parallel.workers(8) { worker in
            do {
                _ = try remote.create("refs/contended", Array("writer \(worker)".utf8))
                winners.withLock { $0.append(worker) }
            } catch let e as RemoteError where e.kind == .preconditionFailed {
            } catch {
                unexpected.withLock { $0.append("\(error)") }
            }
        }
        #expect(unexpected.withLock { $0 } == [])
        let won = winners.withLock { $0 }
        #expect(won.count == 1)
        if let w = won.first {
            #expect(try remote.get("refs/contended")?.bytes == Array("writer \(w)".utf8))
        }
    }

    public static func concurrentReplace(_ make: Factory) throws {
        let remote = try make()
        _ = try remote.create("refs/counter", Array("0".utf8))
        let perWorker = 10
        let unexpected = Locked<[String]>([])
        Parallel.workers(4) { _ in
            var done = 0
            while done < perWorker {
                do {
                    guard let current = try remote.get("refs/counter"),
                          let value = Int(String(decoding: current.bytes, as: UTF8.self)) else {
                        unexpected.withLock { $0.append("counter missing or garbled") }
                        return
                    }
                    _ = try remote.replace("refs/counter", Array("\(value + 1)".utf8), expected: current.etag)
                    done += 1
                } catch let e as RemoteError where e.kind == .preconditionFailed {
                    continue
                } catch {
                    unexpected.withLock { $0.append("\(error)") }
                    return
                }
            }
        }
        #expect(unexpected.withLock { $0 } == [])
        #expect(try remote.get("refs/counter")?.bytes == Array("\(4 * perWorker)".utf8))
    }

    // MARK: helpers

    /// Expects `body` to throw a `RemoteError` of `kind`.
    public static func expectKind(
        _ kind: RemoteError.Kind, _ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
    ) throws {
        do {
            try body()
            Issue.record("\(what): expected \(kind), nothing was thrown", sourceLocation: sourceLocation)
        } catch let e as RemoteError {
            #expect(e.kind == kind, "\(what): \(e)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(what): expected RemoteError.\(kind), got \(error)", sourceLocation: sourceLocation)
        }
    }
}
