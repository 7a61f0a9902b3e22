import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file-system operations that go through `FS`, for fault injection and tracing.
public enum FSOperation: String, Sendable, CaseIterable {
    case open, read, write, fsync, rename, link, unlink, mkdir, fsyncDirectory, truncate
}

/// A test seam: every `FS` operation asks the current injector whether to fail.
///
/// Production code never installs an injector; tests install one to fail the N-th
/// call with EIO or ENOSPC, or to record the order of writes, fsyncs and renames.
public enum FaultInjection {
    public typealias Hook = @Sendable (FSOperation, String) -> Int32?

    private static let hook = Mutex<Hook?>(nil)

    /// Installs `hook` (nil removes it). The hook returns an errno to fail the call.
    public static func install(_ newHook: Hook?) {
        hook.withLock { $0 = newHook }
    }

    /// Called by `FS` before each operation; throws when the hook says so.
    @inline(__always)
    static func check(_ operation: FSOperation, _ path: String) throws {
        guard let h = hook.withLock({ $0 }) else { return }
        if let code = h(operation, path) {
            throw FileSystemError(call: operation.rawValue, path: path, errno: code)
        }
    }
}
