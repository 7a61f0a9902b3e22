import MLVBasics
import Testing

/// Every test that installs the process-wide fault injector, in one serialized suite so
/// no two hooks are ever installed at once; the tests live in extensions beside the
/// tests of the type they exercise. Each hook acts only on paths inside its own test's
/// directory, so other suites running at the same time are not disturbed.
@Suite("Injected faults", .serialized)
struct InjectedFaultTests {
    /// The operations of a pack commit that the fault tests fail.
    static let packCommitOperations: Set<FSOperation> = [.open, .write, .fsync, .rename, .fsyncDirectory]

    static func isInside(_ path: String, _ directory: String) -> Bool {
        path == directory || path.hasPrefix(directory + "/")
    }
}
