import MLVRemote

/// A remote that passes every call to `inner`; tests subclass it to count, fail or
/// misbehave on the calls they care about.
open class ForwardingRemote: Remote, @unchecked Sendable {
    public let inner: any Remote

    public init(_ inner: any Remote) { self.inner = inner }

    open var location: String { inner.location }
    open func get(_ key: String) throws -> RemoteObject? { try inner.get(key) }
    open func getRange(_ key: String, offset: Int64, length: Int) throws -> [UInt8] {
        try inner.getRange(key, offset: offset, length: length)
    }
    open func download(_ key: String, to path: String) throws -> Int64 { try inner.download(key, to: path) }
    open func head(_ key: String) throws -> RemoteEntry? { try inner.head(key) }
    open func put(_ key: String, _ bytes: [UInt8]) throws -> String { try inner.put(key, bytes) }
    open func upload(_ key: String, from path: String) throws -> String { try inner.upload(key, from: path) }
    open func put(_ key: String, pieces: [UploadPiece]) throws -> String { try inner.put(key, pieces: pieces) }
    open func create(_ key: String, _ bytes: [UInt8]) throws -> String { try inner.create(key, bytes) }
    open func replace(_ key: String, _ bytes: [UInt8], expected: String) throws -> String {
        try inner.replace(key, bytes, expected: expected)
    }
    open func list(prefix: String) throws -> [RemoteEntry] { try inner.list(prefix: prefix) }
    open func delete(_ key: String) throws { try inner.delete(key) }
}
