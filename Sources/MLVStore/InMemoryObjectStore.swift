import MLVBasics

/// Objects kept in memory: an `ObjectStore` that is also its own `ObjectWriter`.
///
/// It behaves like a `PackStore` written through a `PackWriter`: `put` deduplicates
/// against committed and pending objects and verifies nothing, `commit` makes pending
/// objects visible, and `read` verifies self-hashed kinds against their id. Compression
/// policies are accepted and ignored: objects are kept raw. Safe to use from several
/// threads.
public final class InMemoryObjectStore: ObjectStore, ObjectWriter {
    /// What error messages name where a pack store would name a pack file.
    public static let location = "memory"

    private struct Object {
        var kind: ObjectKind
        var bytes: [UInt8]
    }

    private struct State {
        var committed: [ObjectID: Object] = [:]
        var pending: [ObjectID: Object] = [:]
    }

    private let state = Locked(State())

    public init() {}

    // MARK: ObjectStore

    public func contains(_ id: ObjectID) -> Bool {
        state.withLock { $0.committed[id] != nil }
    }

    public func info(_ id: ObjectID) -> (kind: ObjectKind, size: Int)? {
        state.withLock { $0.committed[id].map { ($0.kind, $0.bytes.count) } }
    }

    /// The committed object's bytes, verified against its id for self-hashed kinds.
    /// - Throws: `StoreError.missingObject` when nothing is committed under `id`,
    ///   `.corruptObject` when the bytes no longer hash to it.
    public func read(_ id: ObjectID) throws -> (kind: ObjectKind, bytes: [UInt8]) {
        guard let object = state.withLock({ $0.committed[id] }) else {
            throw StoreError.missingObject(id)
        }
        try object.bytes.withUnsafeBytes { try verify(id, object.kind, $0, pack: Self.location) }
        return (object.kind, object.bytes)
    }

    // MARK: ObjectWriter

    /// Keeps a copy of the object until `commit`, unless it is already here.
    /// - Returns: the object's size when it is new (so 0 for an empty object), 0 when
    ///   deduplicated.
    /// - Throws: `StoreError.corruptObject` for an object over `PackFormat.maxObjectSize`,
    ///   as `PackWriter` does.
    @discardableResult
    public func put(_ id: ObjectID, kind: ObjectKind, bytes: UnsafeRawBufferPointer, compression: CompressionPolicy) throws -> Int {
        guard bytes.count <= PackFormat.maxObjectSize else {
            throw StoreError.corruptObject(id, pack: Self.location, reason: "object of \(bytes.count) bytes exceeds the 4 GiB object limit")
        }
        if has(id) { return 0 }
        let object = Object(kind: kind, bytes: Array(bytes))
        return state.withLock { s in
            if s.committed[id] != nil || s.pending[id] != nil { return 0 }
            s.pending[id] = object
            return object.bytes.count
        }
    }

    public func has(_ id: ObjectID) -> Bool {
        state.withLock { $0.committed[id] != nil || $0.pending[id] != nil }
    }

    /// Makes every object put so far visible.
    public func commit() {
        state.withLock { s in
            s.committed.merge(s.pending) { committed, _ in committed }
            s.pending = [:]
        }
    }

    // MARK: for tests

    /// Damages a committed object in place, for tests that check `read` notices: flips
    /// every bit of its middle byte, or gives an empty object one byte.
    /// - Returns: false when nothing is committed under `id`.
    @discardableResult
    public func corrupt(_ id: ObjectID) -> Bool {
        state.withLock { s in
            guard var object = s.committed[id] else { return false }
            if object.bytes.isEmpty {
                object.bytes = [0]
            } else {
                object.bytes[object.bytes.count / 2] ^= 0xFF
            }
            s.committed[id] = object
            return true
        }
    }
}
