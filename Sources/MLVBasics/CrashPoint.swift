#if MLV_CRASH_POINTS
import Synchronization
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Named points in the write path where a test build can kill itself with SIGKILL, to
/// prove that a crash at that moment loses nothing.
///
/// Compiled in only when `MLV_CRASH_POINTS` is defined (debug builds, see
/// `Package.swift`); in a release build `hit` is empty. A test arms one point through the
/// environment: `MLV_CRASH_AT=NAME` kills the process the first time it reaches `NAME`,
/// `MLV_CRASH_AT=NAME:N` the N-th time. The names are listed in `docs/reliability.md`.
public enum CrashPoint {
    #if MLV_CRASH_POINTS
    private static let armed: (name: String, count: Int)? = {
        guard let raw = getenv("MLV_CRASH_AT"), let text = String(validatingCString: raw), !text.isEmpty else { return nil }
        let parts = text.split(separator: ":", maxSplits: 1)
        let count = parts.count == 2 ? Int(parts[1]) ?? 1 : 1
        return (String(parts[0]), max(count, 1))
    }()
    private static let hits = Atomic<Int>(0)
    #endif

    /// Whether this build has crash points compiled in.
    public static var isCompiledIn: Bool {
        #if MLV_CRASH_POINTS
        return true
        #else
        return false
        #endif
    }

    /// Kills the process with SIGKILL when `name` is the armed point and this is the
    /// armed occurrence; otherwise does nothing.
    @inline(__always)
    public static func hit(_ name: StaticString) {
        #if MLV_CRASH_POINTS
        guard let armed, armed.name == name.description else { return }
        if hits.add(1, ordering: .sequentiallyConsistent).newValue == armed.count {
            kill(getpid(), SIGKILL)
        }
        #endif
    }
}

/// The two crash points around the step that publishes a file (`rename` or `link`).
public struct PublishCrashPoints: Sendable {
    public var before: StaticString
    public var after: StaticString

    public init(before: StaticString, after: StaticString) {
        self.before = before
        self.after = after
    }

    func hitBefore() { CrashPoint.hit(before) }
    func hitAfter() { CrashPoint.hit(after) }
}
