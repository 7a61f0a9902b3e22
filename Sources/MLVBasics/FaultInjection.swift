import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file-system operations that go through `FS`, for fault injection and tracing.
public enum FSOperation: String, Sendable, CaseIterable {
    case open, read, write, fsync, rename, link, unlink, mkdir, fsyncDirectory, truncate, flock
}

/// A test seam: every `FS` operation asks the current injector whether to fail.
///
/// Production code never installs an injector; tests install one to fail the N-th
/// call with EIO or ENOSPC, or to record the order of writes, fsyncs and renames.
public enum FaultInjection {
    public typealias Hook = @Sendable (FSOperation, String) -> Int32?

    /// The installed hooks: slot 0 is `install`'s, the others belong to `withHook` calls
    /// running now (tests in different suites may run at the same time).
    private static let hooks = Mutex<[Int: Hook]>([:])
    private static let nextSlot = Atomic<Int>(1)

    /// Installs `hook` (nil removes it). The hook returns an errno to fail the call.
    /// This one slot is shared by every caller: tests that run beside others use
    /// `withHook`, since another test's `install(nil)` would remove their hook.
    public static func install(_ newHook: Hook?) {
        hooks.withLock { $0[0] = newHook }
    }

    /// Runs `body` with `hook` installed beside any other hook, and removes it after.
    /// Hooks must act only on paths of their own test, since others may be installed.
    public static func withHook<T>(_ hook: @escaping Hook, _ body: () throws -> T) rethrows -> T {
        let slot = nextSlot.add(1, ordering: .relaxed).newValue
        hooks.withLock { $0[slot] = hook }
        defer { _ = hooks.withLock { $0.removeValue(forKey: slot) } }
        return try body()
    }

    /// Called by `FS` before each operation; throws when a hook says so.
    @inline(__always)
    static func check(_ operation: FSOperation, _ path: String) throws {
        let installed = hooks.withLock { $0.isEmpty ? [] : Array($0.values) }
        for h in installed {
            if let code = h(operation, path) {
                throw FileSystemError(call: operation.rawValue, path: path, errno: code)
            }
        }
    }
}
