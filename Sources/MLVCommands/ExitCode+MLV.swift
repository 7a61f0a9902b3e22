import ArgumentParser
import MLVKit
import MLVRemote
import MLVStore

/// mlv's exit codes, mapped in this one place and listed in `docs/cli.md`.
///
/// | code | meaning |
/// | --- | --- |
/// | 0 | success |
/// | 1 | the check failed: fsck found damage, audit --verify found tampering, status found changes with --exit-code, blame --fail-if-stage found a model holding the stage, blame --fail-if-empty found nothing; or a remote could not be reached |
/// | 2 | not found: no store, no such path, ref, version, split, model, stage or alias |
/// | 3 | conflict: checkout would overwrite, a ref moved (a registry change lost a race, a push found a stage moved on the remote, a pull found a diverged chain), a lock is held |
/// | 4 | the store is damaged (a corrupt or missing object, a bad ref) |
/// | 5 | refused: bad input (invalid name, unsafe path, unsupported file, newer store format, missing approvals, empty identity, a remote that ignores conditional writes or rejects the credentials) |
/// | 64 | usage error (unknown option, missing argument) |
public enum MLVExit {
    public static let success: Int32 = 0
    public static let checkFailed: Int32 = 1
    public static let notFound: Int32 = 2
    public static let conflict: Int32 = 3
    public static let damaged: Int32 = 4
    public static let refused: Int32 = 5
    public static let usage: Int32 = 64

    /// The exit code for an error thrown by the library.
    static func code(for error: Error) -> Int32 {
        switch error {
        case let e as MLVError:
            switch e {
            case .notARepository, .pathNotFound, .unknownRef, .unknownSplit, .notInVersion, .notFound: return notFound
            case .checkoutConflict, .registryChanged, .remoteConflict: return conflict
            case .remote(let r): return code(for: r)
            case .damaged: return damaged
            case .store(let s): return code(for: s)
            case .ambiguousPrefix, .invalidName, .invalidArgument, .insideStore, .unsupportedFile, .unsafePath,
                 .alreadyInitialized, .unreadable, .model, .ambiguousRef, .refused:
                return refused
            }
        case let s as StoreError:
            switch s {
            case .missingObject, .corruptObject, .corruptFile, .badRef: return damaged
            case .refChanged, .locked: return conflict
            case .newerFormat: return refused
            case .io: return checkFailed
            }
        case let r as RemoteError:
            return code(for: r)
        default:
            return checkFailed
        }
    }

    /// A remote's answer: absent is not found, a lost conditional write a conflict, bad
    /// credentials or a remote that lacks what mlv needs refused, anything else failed.
    static func code(for error: RemoteError) -> Int32 {
        switch error.kind {
        case .notFound: return notFound
        case .preconditionFailed: return conflict
        case .unauthorized, .unsupported: return refused
        case .unreachable, .failed: return checkFailed
        }
    }
}

/// Runs a command body, printing a library error as `mlv: error: ...` and exiting with
/// its mapped code.
func run(_ body: () throws -> Void) throws {
    do {
        try body()
        try flushStandardOutput()
    } catch let e as ExitCode {
        throw e
    } catch let e as ValidationError {
        throw e
    } catch {
        printError("error: \(error)")
        throw ExitCode(MLVExit.code(for: error))
    }
}
