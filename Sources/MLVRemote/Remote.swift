import MLVBasics

/// A place a team shares a store through: a flat key-value space with conditional
/// writes (a shared directory, an S3-compatible bucket, or memory in tests).
///
/// Keys are `/`-separated relative paths of printable ASCII (`packs/<id>.pack`,
/// `refs/dataset/mnist/versions/3`); `RemoteKey` has the full rules, which every
/// implementation checks before it touches anything. Every implementation makes an object appear under
/// its key only when it is complete, and moves refs only by the two conditional writes,
/// so a push interrupted at any point leaves the remote consistent.
public protocol Remote: Sendable {
    /// What a person would recognise: `s3://bucket/prefix` or a directory path.
    var location: String { get }

    /// The whole object, or nil when the key does not exist.
    /// - Throws: `RemoteError` for anything but absence.
    func get(_ key: String) throws -> RemoteObject?

    /// `length` bytes starting at `offset` of an object (for reading a few records of a pack).
    /// Fewer when the object ends first; none when `offset` is at or past its end.
    /// - Throws: `RemoteError.notFound` when the key does not exist.
    func getRange(_ key: String, offset: Int64, length: Int) throws -> [UInt8]

    /// Downloads an object into a local file (created or truncated), streaming: a
    /// multi-GB pack never sits in memory. Returns the object's size.
    /// - Throws: `RemoteError.notFound` when the key does not exist.
    func download(_ key: String, to path: String) throws -> Int64

    /// Size and entity tag, or nil when the key does not exist.
    func head(_ key: String) throws -> RemoteEntry?

    /// Writes an object unconditionally (content-named objects such as packs, whose bytes
    /// never differ for one key). Returns the new entity tag.
    func put(_ key: String, _ bytes: [UInt8]) throws -> String

    /// Uploads a local file unconditionally, streaming. Returns the new entity tag.
    func upload(_ key: String, from path: String) throws -> String

    /// Writes an object unconditionally from pieces, concatenated in order: bytes, and
    /// ranges of open local files (a pack assembled from records of local packs).
    /// Returns the new entity tag. The default gathers the pieces in memory and calls
    /// `put(_:_:)`; a remote that can copy file ranges without that does.
    func put(_ key: String, pieces: [UploadPiece]) throws -> String

    /// Creates the object only when the key does not exist (`If-None-Match: *`).
    /// - Throws: `RemoteError.preconditionFailed` when it exists.
    func create(_ key: String, _ bytes: [UInt8]) throws -> String

    /// Replaces the object only when its entity tag is still `expected` (`If-Match`).
    /// - Throws: `RemoteError.preconditionFailed` when it changed or no longer exists.
    func replace(_ key: String, _ bytes: [UInt8], expected: String) throws -> String

    /// Every key that starts with `prefix` (a string prefix, as in S3: `refs/a` also
    /// matches `refs/ab/1`, `refs/a/` does not), sorted by key bytes.
    func list(prefix: String) throws -> [RemoteEntry]

    /// Removes an object; removing an absent key is not an error.
    func delete(_ key: String) throws
}

/// One piece of an object written by `Remote.put(_:pieces:)`.
public enum UploadPiece: Sendable, Equatable {
    case bytes([UInt8])
    /// `length` bytes at `offset` of the open local file `fd`, which stays the caller's
    /// to close; `path` names it in errors.
    case file(fd: Int32, path: String, offset: Int, length: Int)

    /// Bytes this piece adds.
    public var length: Int {
        switch self {
        case .bytes(let b): b.count
        case .file(_, _, _, let length): length
        }
    }
}

extension Remote {
    public func put(_ key: String, pieces: [UploadPiece]) throws -> String {
        try put(key, RemoteFile.gather(pieces, key: key, location: location))
    }
}

/// The bytes of one remote object and its entity tag.
public struct RemoteObject: Sendable, Equatable {
    public var bytes: [UInt8]
    public var etag: String
    public init(bytes: [UInt8], etag: String) { self.bytes = bytes; self.etag = etag }
}

/// One key of a listing.
public struct RemoteEntry: Sendable, Equatable {
    public var key: String
    public var size: Int64
    public var etag: String
    public init(key: String, size: Int64, etag: String) { self.key = key; self.size = size; self.etag = etag }
}

/// What can go wrong talking to a remote; each case names the remote and key.
public struct RemoteError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The key does not exist.
        case notFound
        /// A conditional write lost: the key exists (create) or moved (replace).
        case preconditionFailed
        /// Credentials are missing, wrong or not allowed to do this.
        case unauthorized
        /// The endpoint did not answer in time or refused the connection.
        case unreachable
        /// The remote does not do what mlv needs (for example, ignores conditional writes).
        case unsupported
        /// Anything else the remote answered with.
        case failed
    }

    public var kind: Kind
    public var location: String
    public var key: String?
    public var message: String

    public init(_ kind: Kind, location: String, key: String? = nil, _ message: String) {
        self.kind = kind; self.location = location; self.key = key; self.message = message
    }

    public var description: String {
        let place = key.map { "\(location)/\($0)" } ?? location
        return "\(place): \(message)"
    }
}
