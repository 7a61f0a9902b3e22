import MLVBasics

/// What can go wrong in the object store, each case naming the id, ref or path.
public enum StoreError: Error, CustomStringConvertible, Sendable {
    /// No object with this id is stored.
    case missingObject(ObjectID)
    /// The object's bytes do not hash to its id, cannot be decompressed, or are cut short.
    case corruptObject(ObjectID, pack: String, reason: String)
    /// A pack or index file fails its own checks.
    case corruptFile(path: String, reason: String)
    /// The store was written by a newer mlv.
    case newerFormat(path: String, found: Int, supported: Int)
    /// A ref file holds something other than an object id.
    case badRef(path: String, reason: String)
    /// Compare-and-swap lost: the ref moved since it was read.
    case refChanged(ref: String, expected: String, found: String)
    /// A lock is held by someone else.
    case locked(String)
    case io(FileSystemError)

    public var description: String {
        switch self {
        case .missingObject(let id):
            return "object \(id.hex) is missing from the store"
        case .corruptObject(let id, let pack, let reason):
            return "object \(id.hex) in \(pack) is damaged: \(reason)"
        case .corruptFile(let path, let reason):
            return "'\(path)' is damaged: \(reason)"
        case .newerFormat(let path, let found, let supported):
            return "'\(path)' has format version \(found); this mlv reads up to \(supported). Upgrade mlv to use this store."
        case .badRef(let path, let reason):
            return "ref '\(path)' is damaged: \(reason)"
        case .refChanged(let ref, let expected, let found):
            return "\(ref) changed since it was read (expected \(expected), found \(found))"
        case .locked(let what):
            return what
        case .io(let e):
            return e.description
        }
    }
}

/// Runs `body`, turning a `FileSystemError` into `StoreError.io`.
@inline(__always)
func io<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as FileSystemError { throw StoreError.io(e) }
}
