import MLVRemote
import MLVBasics

/// Fails the n-th call made through it (any operation, reads included) once, with
/// `RemoteError.unreachable`, as a connection that drops at that request; every other
/// call passes on. Tests loop n = 1, 2, ... until an operation completes.
public final class FaultyRemote: ForwardingRemote, @unchecked Sendable {
    private let failAt: Int
    private let calls = Locked<(seen: Int, failed: String?)>((0, nil))

    /// A remote over `inner` whose `failAt`-th call fails (0: none does).
    public init(_ inner: any Remote, failAt: Int) {
        self.failAt = failAt
        super.init(inner)
    }

    /// How many calls were made, and the one that failed ("put packs/..."), if any.
    public var callCount: Int { calls.withLock { $0.seen } }
    public var failed: String? { calls.withLock { $0.failed } }

    private func step(_ op: String, _ key: String) throws {
        let fail = calls.withLock { c -> Bool in
            c.seen += 1
            guard c.seen == failAt else { return false }
            c.failed = op + " " + key
            return true
        }
        if fail { throw RemoteError(.unreachable, location: location, key: key, "connection dropped at call \(failAt) (injected)") }
    }

    public override func get(_ key: String) throws -> RemoteObject? { try step("get", key); return try super.get(key) }
    public override func getRange(_ key: String, offset: Int64, length: Int) throws -> [UInt8] {
        try step("getRange", key); return try super.getRange(key, offset: offset, length: length)
    }
    public override func download(_ key: String, to path: String) throws -> Int64 {
        try step("download", key); return try super.download(key, to: path)
    }
    public override func head(_ key: String) throws -> RemoteEntry? { try step("head", key); return try super.head(key) }
    public override func put(_ key: String, _ bytes: [UInt8]) throws -> String { try step("put", key); return try super.put(key, bytes) }
    public override func upload(_ key: String, from path: String) throws -> String {
        try step("upload", key); return try super.upload(key, from: path)
    }
    public override func create(_ key: String, _ bytes: [UInt8]) throws -> String {
        try step("create", key); return try super.create(key, bytes)
    }
    public override func replace(_ key: String, _ bytes: [UInt8], expected: String) throws -> String {
        try step("replace", key); return try super.replace(key, bytes, expected: expected)
    }
    public override func list(prefix: String) throws -> [RemoteEntry] { try step("list", prefix); return try super.list(prefix: prefix) }
    public override func delete(_ key: String) throws { try step("delete", key); try super.delete(key) }
}
