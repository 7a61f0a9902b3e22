import MLVBasics
import MLVModel
import MLVRemote
import MLVStore

/// What the library reports to its callers. Each case names the path, ref or id.
public enum MLVError: Error, CustomStringConvertible {
    case notARepository(searchedFrom: String)
    case alreadyInitialized(path: String)
    case invalidName(String, reason: String)
    case invalidArgument(String)
    case pathNotFound(String)
    case unreadable(path: String, cause: FileSystemError)
    case insideStore(path: String)
    case unsupportedFile(path: String, what: String)
    case unsafePath(path: String, reason: String)
    case unknownRef(String, suggestions: [String])
    case ambiguousPrefix(String, candidates: [String])
    case unknownSplit(ref: String, split: String, known: [String])
    case notInVersion(ref: String, path: String)
    case checkoutConflict(target: String, paths: [String])
    case damaged(String)
    /// A name that exists for more than one kind (`mnist` as a dataset and a model).
    case ambiguousRef(String, candidates: [String])
    /// Something named is not there: a model, stage, alias, event. The message names it.
    case notFound(String)
    /// A registry compare-and-swap lost: `ref` (`digits@production`) moved since it was read.
    case registryChanged(ref: String)
    /// A registry change the stage's rules or the current state refuse; the message says why.
    case refused(String)
    case store(StoreError)
    case model(String)
    /// Talking to a remote failed (unreachable, unauthorized, not found ...).
    case remote(RemoteError)
    /// A push or pull found a ref that moved on the other side; the message says what
    /// changed and how to reconcile.
    case remoteConflict(String)

    public var description: String {
        switch self {
        case .notARepository(let path):
            return "no mlv store found in '\(path)' or any parent directory (run 'mlv init')"
        case .alreadyInitialized(let path):
            return "'\(path)' already holds an mlv store"
        case .invalidName(let name, let reason):
            return "invalid name '\(name)': \(reason)"
        case .invalidArgument(let message):
            return message
        case .pathNotFound(let path):
            return "'\(path)' does not exist"
        case .unreadable(let path, let cause):
            return "cannot read '\(path)': \(cause)"
        case .insideStore(let path):
            return "'\(path)' is inside the .mlv store; add data from outside it"
        case .unsupportedFile(let path, let what):
            return "'\(path)' is a \(what); only files, directories and symlinks can be versioned"
        case .unsafePath(let path, let reason):
            return "unsafe path '\(escaped(path))': \(reason)"
        case .unknownRef(let ref, let suggestions):
            return "no such version '\(ref)'" + (suggestions.isEmpty ? "" : "; did you mean \(suggestions.joined(separator: ", "))?")
        case .ambiguousPrefix(let prefix, let candidates):
            return "id prefix '\(prefix)' is ambiguous: \(candidates.joined(separator: ", "))"
        case .unknownSplit(let ref, let split, let known):
            return "\(ref) has no split '\(split)'" + (known.isEmpty ? " (it has none)" : " (it has \(known.joined(separator: ", ")))")
        case .notInVersion(let ref, let path):
            return "'\(path)' is not in \(ref)"
        case .checkoutConflict(let target, let paths):
            let shown = paths.prefix(10).joined(separator: ", ") + (paths.count > 10 ? ", and \(paths.count - 10) more" : "")
            return "checkout into '\(target)' would overwrite files that differ: \(shown) (use --force to overwrite)"
        case .damaged(let message):
            return message
        case .ambiguousRef(let ref, let candidates):
            return "'\(ref)' names more than one kind of artifact; say which: \(candidates.joined(separator: ", "))"
        case .notFound(let message):
            return message
        case .registryChanged(let ref):
            return "\(ref) changed since you read it; look again ('mlv registry') and retry"
        case .refused(let message):
            return message
        case .store(let e):
            return e.description
        case .model(let message):
            return message
        case .remote(let e):
            return e.description
        case .remoteConflict(let message):
            return message
        }
    }
}

/// Runs `body`, wrapping lower layers' errors into `MLVError`.
@discardableResult
func wrap<T>(_ body: () throws -> T) throws -> T {
    do { return try body() }
    catch let e as MLVError { throw e }
    catch let e as StoreError { throw MLVError.store(e) }
    catch let e as FileSystemError { throw MLVError.store(.io(e)) }
    catch let e as ModelError { throw MLVError.model(e.message) }
    catch let e as JSONError { throw MLVError.model(e.description) }
    catch let e as ChunkerParameterError { throw MLVError.invalidArgument(e.description) }
}
