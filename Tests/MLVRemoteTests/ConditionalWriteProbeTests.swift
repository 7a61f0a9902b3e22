import MLVRemote
import Testing

/// A remote that ignores conditions: `create` overwrites, `replace` ignores the tag.
private final class IgnoresConditions: Remote {
    let inner = InMemoryRemote(location: "careless")
    let honourCreate: Bool
    let honourReplace: Bool
    init(honourCreate: Bool, honourReplace: Bool) {
        self.honourCreate = honourCreate
        self.honourReplace = honourReplace
    }
    var location: String { inner.location }
    func get(_ key: String) throws -> RemoteObject? { try inner.get(key) }
    func getRange(_ key: String, offset: Int64, length: Int) throws -> [UInt8] { try inner.getRange(key, offset: offset, length: length) }
    func download(_ key: String, to path: String) throws -> Int64 { try inner.download(key, to: path) }
    func head(_ key: String) throws -> RemoteEntry? { try inner.head(key) }
    func put(_ key: String, _ bytes: [UInt8]) throws -> String { try inner.put(key, bytes) }
    func upload(_ key: String, from path: String) throws -> String { try inner.upload(key, from: path) }
    func create(_ key: String, _ bytes: [UInt8]) throws -> String {
        honourCreate ? try inner.create(key, bytes) : try inner.put(key, bytes)
    }
    func replace(_ key: String, _ bytes: [UInt8], expected: String) throws -> String {
        honourReplace ? try inner.replace(key, bytes, expected: expected) : try inner.put(key, bytes)
    }
    func list(prefix: String) throws -> [RemoteEntry] { try inner.list(prefix: prefix) }
    func delete(_ key: String) throws { try inner.delete(key) }
}

@Suite("probeConditionalWrites")
struct ConditionalWriteProbeTests {
    @Test("a remote that honours both conditions is safe, and the probe cleans up")
    func safe() throws {
        let remote = InMemoryRemote()
        let probe = try probeConditionalWrites(remote)
        #expect(probe.isSafe)
        #expect(probe.explanation == nil)
        #expect(try remote.list(prefix: "") == [])
    }

    @Test("a remote that ignores a condition is reported, naming which", arguments: [(false, true), (true, false), (false, false)])
    func unsafe(_ honour: (create: Bool, replace: Bool)) throws {
        let remote = IgnoresConditions(honourCreate: honour.create, honourReplace: honour.replace)
        let probe = try probeConditionalWrites(remote)
        #expect(!probe.isSafe)
        #expect(probe.refusesSecondCreate == honour.create)
        #expect(probe.refusesStaleReplace == honour.replace)
        let text = try #require(probe.explanation)
        #expect(text.contains("If-None-Match") == !honour.create)
        #expect(text.contains("If-Match ignored") == !honour.replace)
        #expect(try remote.list(prefix: "") == [])
    }
}
