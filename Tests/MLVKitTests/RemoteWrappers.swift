import MLVBasics
import MLVRemote
import MLVTestSupport

/// Counts the requests made through it, by operation, and passes them on.
final class CountingRemote: ForwardingRemote, @unchecked Sendable {
    private let counts = Locked<[String: Int]>([:])
    /// Keys written by `put`/`upload`, in order.
    private let putKeys = Locked<[String]>([])

    func count(_ op: String) -> Int { counts.withLock { $0[op] ?? 0 } }
    var writes: Int { count("put") + count("upload") + count("create") + count("replace") + count("delete") }
    var total: Int { counts.withLock { $0.values.reduce(0, +) } }
    var keysPut: [String] { putKeys.withLock { $0 } }
    func reset() { counts.withLock { $0 = [:] }; putKeys.withLock { $0 = [] } }
    private func note(_ op: String, _ key: String? = nil) {
        counts.withLock { $0[op, default: 0] += 1 }
        if let key { putKeys.withLock { $0.append(key) } }
    }

    override func get(_ key: String) throws -> RemoteObject? { note("get"); return try super.get(key) }
    override func getRange(_ key: String, offset: Int64, length: Int) throws -> [UInt8] {
        note("getRange"); return try super.getRange(key, offset: offset, length: length)
    }
    override func download(_ key: String, to path: String) throws -> Int64 { note("download"); return try super.download(key, to: path) }
    override func head(_ key: String) throws -> RemoteEntry? { note("head"); return try super.head(key) }
    override func put(_ key: String, _ bytes: [UInt8]) throws -> String { note("put", key); return try super.put(key, bytes) }
    override func upload(_ key: String, from path: String) throws -> String { note("upload", key); return try super.upload(key, from: path) }
    override func put(_ key: String, pieces: [UploadPiece]) throws -> String { note("put", key); return try super.put(key, pieces: pieces) }
    override func create(_ key: String, _ bytes: [UInt8]) throws -> String { note("create"); return try super.create(key, bytes) }
    override func replace(_ key: String, _ bytes: [UInt8], expected: String) throws -> String {
        note("replace"); return try super.replace(key, bytes, expected: expected)
    }
    override func list(prefix: String) throws -> [RemoteEntry] { note("list"); return try super.list(prefix: prefix) }
    override func delete(_ key: String) throws { note("delete"); try super.delete(key) }
}

/// Fails every write after the first `writesAllowed`, as a connection that drops mid-push.
final class FailingRemote: ForwardingRemote, @unchecked Sendable {
    private let remaining: Locked<Int>

    init(_ inner: any Remote, writesAllowed: Int) {
        remaining = Locked(writesAllowed)
        super.init(inner)
    }

    private func spend(_ key: String) throws {
        let ok = remaining.withLock { n -> Bool in
            n -= 1
            return n >= 0
        }
        if !ok { throw RemoteError(.unreachable, location: location, key: key, "connection dropped (injected)") }
    }

    override func put(_ key: String, _ bytes: [UInt8]) throws -> String { try spend(key); return try super.put(key, bytes) }
    override func upload(_ key: String, from path: String) throws -> String { try spend(key); return try super.upload(key, from: path) }
    override func put(_ key: String, pieces: [UploadPiece]) throws -> String { try spend(key); return try super.put(key, pieces: pieces) }
    override func create(_ key: String, _ bytes: [UInt8]) throws -> String { try spend(key); return try super.create(key, bytes) }
    override func replace(_ key: String, _ bytes: [UInt8], expected: String) throws -> String {
        try spend(key); return try super.replace(key, bytes, expected: expected)
    }
    override func delete(_ key: String) throws { try spend(key); try super.delete(key) }
}

/// A remote whose `create` and `replace` write unconditionally, as some S3 clones do.
final class IgnoresConditions: ForwardingRemote, @unchecked Sendable {
    override func create(_ key: String, _ bytes: [UInt8]) throws -> String { try put(key, bytes) }
    override func replace(_ key: String, _ bytes: [UInt8], expected: String) throws -> String { try put(key, bytes) }
}

/// A DirectoryRemote over a temporary directory removed with it.
final class KeptDirectoryRemote: ForwardingRemote, @unchecked Sendable {
    let directory: TemporaryDirectory
    init(_ name: String) throws {
        directory = try TemporaryDirectory(prefix: "mlv-remote-" + name)
        super.init(try DirectoryRemote(path: directory.path))
    }
}
