import MLVBasics

/// What a stored object is. Stored in pack records and index entries as one byte.
public enum ObjectKind: UInt8, Sendable, CustomStringConvertible {
    /// Raw bytes of one chunk; id = SHA-256 of the bytes. A blob smaller than the
    /// chunker's minimum is one chunk, so its chunk id is its blob id.
    case chunk = 1
    /// The ordered chunk list of a multi-chunk blob; id = the blob id (SHA-256 of the
    /// whole file), verified by reassembling the chunks.
    case chunkList = 2
    /// A directory listing, canonical JSON; id = SHA-256 of those bytes.
    case tree = 3
    /// A manifest (dataset, code snapshot, ...), canonical JSON; id = SHA-256 of those bytes.
    case manifest = 4

    public var description: String {
        switch self {
        case .chunk: "chunk"
        case .chunkList: "chunk-list"
        case .tree: "tree"
        case .manifest: "manifest"
        }
    }

    /// Whether the id is the SHA-256 of exactly the object's bytes.
    public var isSelfHashed: Bool { self != .chunkList }
}

/// How hard the writer should try to compress an object.
public enum CompressionPolicy: Sendable {
    /// Store raw.
    case never
    /// Probe a sample; deflate only when it looks compressible, keep only if it saves >= 10%.
    case auto
    /// Always try deflate (trees and manifests: small and very compressible).
    case always
}

/// A place objects are kept, by id.
public protocol ObjectStore: AnyObject, Sendable {
    /// True when an object with this id is stored.
    func contains(_ id: ObjectID) -> Bool
    /// The kind and raw size of an object, without reading it.
    func info(_ id: ObjectID) -> (kind: ObjectKind, size: Int)?
    /// The object's raw bytes, verified against its id where the id is its hash.
    /// - Throws: `StoreError.missingObject` or `.corruptObject`.
    func read(_ id: ObjectID) throws -> (kind: ObjectKind, bytes: [UInt8])
}

/// A sink for new objects during one command; nothing is visible until `commit`.
public protocol ObjectWriter: AnyObject, Sendable {
    /// Stores an object unless the store or this writer already has it.
    /// - Returns: the number of bytes newly written (0 when deduplicated).
    @discardableResult
    func put(_ id: ObjectID, kind: ObjectKind, bytes: UnsafeRawBufferPointer, compression: CompressionPolicy) throws -> Int
    /// True when the store or this writer has the object.
    func has(_ id: ObjectID) -> Bool
    /// Makes everything put so far durable and visible.
    func commit() throws
}

public extension ObjectWriter {
    @discardableResult
    func put(_ id: ObjectID, kind: ObjectKind, bytes: [UInt8], compression: CompressionPolicy) throws -> Int {
        try bytes.withUnsafeBytes { try put(id, kind: kind, bytes: $0, compression: compression) }
    }
}

/// Verifies that `bytes` hash to `id` for self-hashed kinds.
func verify(_ id: ObjectID, _ kind: ObjectKind, _ bytes: UnsafeRawBufferPointer, pack: String) throws {
    guard kind.isSelfHashed else { return }
    let actual = SHA256.hash(bytes)
    if actual != id {
        throw StoreError.corruptObject(id, pack: pack, reason: "content hashes to \(actual.short)")
    }
}
