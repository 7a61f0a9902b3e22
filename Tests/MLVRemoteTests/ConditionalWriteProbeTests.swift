import MLVRemote
import MLVTestSupport
import Testing

/// A remote that ignores conditions: `create` overwrites, `replace` ignores the tag.
private final class IgnoresConditions: ForwardingRemote, @unchecked Sendable {
    let honourCreate: Bool
    let honourReplace: Bool
    init(honourCreate: Bool, honourReplace: Bool) {
        self.honourCreate = honourCreate
        self.honourReplace = honourReplace
        super.init(InMemoryRemote(location: "careless"))
    }
    override func create(_ key: String, _ bytes: [UInt8]) throws -> String {
        honourCreate ? try inner.create(key, bytes) : try inner.put(key, bytes)
    }
    override func replace(_ key: String, _ bytes: [UInt8], expected: String) throws -> String {
        honourReplace ? try inner.replace(key, bytes, expected: expected) : try inner.put(key, bytes)
    }
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
