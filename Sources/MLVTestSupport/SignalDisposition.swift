#if canImport(Glibc)
import Glibc
#endif

/// Whether SIGPIPE is at its default disposition in this process (read only: tests must
/// not change a process-wide disposition, since suites run beside each other).
public func sigpipeIsAtItsDefault() -> Bool {
    var current = sigaction()
    guard sigaction(SIGPIPE, nil, &current) == 0 else { return false }
    return unsafeBitCast(current.__sigaction_handler.sa_handler, to: Int.self) == 0  // SIG_DFL
}
