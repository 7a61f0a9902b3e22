import MLVBasics
import MLVRemote

/// Counts the requests made through it, by operation, and passes them on.
final class CountingRemote: Remote, @unchecked Sendable {
    let inner: any Remote
    private let counts = Locked<[String: Int]>([:])
    /// Keys written by `put`/`upload`, in order.
    private let putKeys = Locked<[String]>([])

    init(_ inner: any Remote) { self.inner = inner }

    var location: String { inner.location }
    func count(_ op: String) -> Int { counts.withLock { $0[op] ?? 0 } }
    var writes: Int { count("put") + count("upload") + count("create") + count("replace") + count("delete") }
    var total: Int { counts.withLock { $0.values.reduce(0, +) } }
    var keysPut: [String] { putKeys.withLock { $0 } }
    func reset() { counts.withLock { $0 = [:] }; putKeys.withLock { $0 = [] } }
    private func note(_ op: String) { counts.withLock { $0[op, default: 0] += 1 } }

    func get(_ key: String) throws -> RemoteObject? { note("get"); return try inner.get(key) }
    func getRange(_ key: String, offset: Int64, length: Int) throws -> [UInt8] {
        note("getRange"); return try inner.getRange(key, offset: offset, length: length)
    }
    func download(_ key: String, to path: String) throws -> Int64 { note("download"); return try inner.download(key, to: path) }
    func head(_ key: String) throws -> RemoteEntry? { note("head"); return try inner.head(key) }
    func put(_ key: String, _ bytes: [UInt8]) throws -> String {
        note("put"); putKeys.withLock { $0.append(key) }; return try inner.put(key, bytes)
    }
    func upload(_ key: String, from path: String) throws -> String {
        note("upload"); putKeys.withLock { $0.append(key) }; return try inner.upload(key, from: path)
    }
    func create(_ key: String, _ bytes: [UInt8]) throws -> String { note("create"); return try inner.create(key, bytes) }
    func replace(_ key: String, _ bytes: [UInt8], expected: String) throws -> String {
        note("replace"); return try inner.replace(key, bytes, expected: expected)
    }
    func list(prefix: String) throws -> [RemoteEntry] { note("list"); return try inner.list(prefix: prefix) }
    func delete(_ key: String) throws { note("delete"); try inner.delete(key) }
}

/// Fails every write after the first `writesAllowed`, as a connection that drops mid-push.
final class FailingRemote: Remote, @unchecked Sendable {
    let inner: any Remote
    private let remaining: Locked<Int>

    init(_ inner: any Remote, writesAllowed: Int) {
        self.inner = inner
        remaining = Locked(writesAllowed)
    }

    var location: String { inner.location }
    private func spend(_ key: String) throws {
        let ok = remaining.withLock { n -> Bool in
            n -= 1
            return n >= 0
        }
        if !ok { throw RemoteError(.unreachable, location: location, key: key, "connection dropped (injected)") }
    }

    func get(_ key: String) throws -> RemoteObject? { try inner.get(key) }
    func getRange(_ key: String, offset: Int64, length: Int) throws -> [UInt8] { try inner.getRange(key, offset: offset, length: length) }
    func download(_ key: String, to path: String) throws -> Int64 { try inner.download(key, to: path) }
    func head(_ key: String) throws -> RemoteEntry? { try inner.head(key) }
    func put(_ key: String, _ bytes: [UInt8]) throws -> String { try spend(key); return try inner.put(key, bytes) }
    func upload(_ key: String, from path: String) throws -> String { try spend(key); return try inner.upload(key, from: path) }
    func create(_ key: String, _ bytes: [UInt8]) throws -> String { try spend(key); return try inner.create(key, bytes) }
    func replace(_ key: String, _ bytes: [UInt8], expected: String) throws -> String {
        try spend(key); return try inner.replace(key, bytes, expected: expected)
    }
    func list(prefix: String) throws -> [RemoteEntry] { try inner.list(prefix: prefix) }
    func delete(_ key: String) throws { try spend(key); try inner.delete(key) }
}
