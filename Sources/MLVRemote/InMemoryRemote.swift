import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// A `Remote` kept in memory, for tests: a dictionary behind one lock.
///
/// Every write gives the object a new entity tag (a generation number), even when the
/// bytes are the same, so a compare-and-swap against a tag read before any write loses.
public final class InMemoryRemote: Remote {
    public let location: String

    private struct Stored {
        var bytes: [UInt8]
        var etag: String
    }

    private struct State {
        var objects: [String: Stored] = [:]
        var generation = 0

        mutating func store(_ key: String, _ bytes: [UInt8]) -> String {
            generation += 1
            let etag = "\"m\(generation)\""
            objects[key] = Stored(bytes: bytes, etag: etag)
            return etag
        }
    }

    private let state = Locked(State())

    /// An empty remote; `location` is what error messages name.
    public init(location: String = "memory") {
        self.location = location
    }

    /// A second remote holding the same objects under the same entity tags, for tests
    /// that replay one remote state many times; later writes to either do not reach the other.
    public func copy(location: String? = nil) -> InMemoryRemote {
        let other = InMemoryRemote(location: location ?? self.location)
        let snapshot = state.withLock { $0 }
        other.state.withLock { $0 = snapshot }
        return other
    }

    public func get(_ key: String) throws -> RemoteObject? {
        try RemoteKey.check(key, location: location)
        return state.withLock { $0.objects[key].map { RemoteObject(bytes: $0.bytes, etag: $0.etag) } }
    }

    public func getRange(_ key: String, offset: Int64, length: Int) throws -> [UInt8] {
        try RemoteKey.check(key, location: location)
        try RemoteRange.check(offset: offset, length: length, key: key, location: location)
        guard let bytes = state.withLock({ $0.objects[key]?.bytes }) else { throw notFound(key) }
        let start = Int(min(offset, Int64(bytes.count)))
        return Array(bytes[start..<min(bytes.count, start + length)])
    }

    public func download(_ key: String, to path: String) throws -> Int64 {
        guard let object = try get(key) else { throw notFound(key) }
        try RemoteFile.write(object.bytes, to: path, key: key, location: location)
        return Int64(object.bytes.count)
    }

    public func head(_ key: String) throws -> RemoteEntry? {
        try RemoteKey.check(key, location: location)
        return state.withLock { s in
            s.objects[key].map { RemoteEntry(key: key, size: Int64($0.bytes.count), etag: $0.etag) }
        }
    }

    public func put(_ key: String, _ bytes: [UInt8]) throws -> String {
        try RemoteKey.check(key, location: location)
        return state.withLock { $0.store(key, bytes) }
    }

    public func upload(_ key: String, from path: String) throws -> String {
        try RemoteKey.check(key, location: location)
        let bytes = try RemoteFile.read(path, key: key, location: location)
        return state.withLock { $0.store(key, bytes) }
    }

    public func create(_ key: String, _ bytes: [UInt8]) throws -> String {
        try RemoteKey.check(key, location: location)
        let etag: String? = state.withLock { s in
            s.objects[key] == nil ? s.store(key, bytes) : nil
        }
        guard let etag else {
            throw RemoteError(.preconditionFailed, location: location, key: key, "already exists")
        }
        return etag
    }

    public func replace(_ key: String, _ bytes: [UInt8], expected: String) throws -> String {
        try RemoteKey.check(key, location: location)
        let result: Result<String, RemoteError> = state.withLock { s in
            guard let current = s.objects[key] else {
                return .failure(RemoteError(.preconditionFailed, location: location, key: key, "does not exist"))
            }
            guard current.etag == expected else {
                return .failure(RemoteError(.preconditionFailed, location: location, key: key,
                                            "changed: entity tag is \(current.etag), expected \(expected)"))
            }
            return .success(s.store(key, bytes))
        }
        return try result.get()
    }

    public func list(prefix: String) throws -> [RemoteEntry] {
        try RemoteKey.checkPrefix(prefix, location: location)
        let entries = state.withLock { s in
            s.objects.compactMap { key, object in
                key.utf8.starts(with: prefix.utf8) ? RemoteEntry(key: key, size: Int64(object.bytes.count), etag: object.etag) : nil
            }
        }
        return RemoteKey.sortedByBytes(entries)
    }

    public func delete(_ key: String) throws {
        try RemoteKey.check(key, location: location)
        state.withLock { _ = $0.objects.removeValue(forKey: key) }
    }

    private func notFound(_ key: String) -> RemoteError {
        RemoteError(.notFound, location: location, key: key, "no such object")
    }
}
