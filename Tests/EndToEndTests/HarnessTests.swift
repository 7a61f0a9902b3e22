import MLVBasics
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The process harness itself: a child whose end it cannot learn is an error, never a
/// made-up exit 0 with whatever (possibly nothing) the child had written.
@Suite("process harness")
struct HarnessTests {
    @Test func aChildReapedBySomeoneElseIsAHarnessErrorNotExitZero() throws {
        let dir = try Scenario.makeDirectory(prefix: "mlv-harness")
        defer { Scenario.removeTree(dir) }
        let child = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "exit 7"], directory: dir)
        // Someone else in this process reaps it first (as a stray waitpid(-1) would).
        var status: Int32 = 0
        while waitpid(child.pid, &status, 0) < 0 && errno == EINTR {}
        let r = child.wait()
        #expect(r.status == -1, "\(r)")
        #expect(r.harnessError?.contains("ECHILD") == true || r.harnessError?.contains("No child processes") == true, "\(r)")
        #expect(r.description.contains("harness error"))
    }

    @Test func aChildItWaitsForReportsItsRealStatusAndOutput() throws {
        let dir = try Scenario.makeDirectory(prefix: "mlv-harness")
        defer { Scenario.removeTree(dir) }
        let r = try runProgram("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"], in: dir)
        #expect(r.status == 3 && r.harnessError == nil, "\(r)")
        #expect(r.stdout == "out\n" && r.stderr == "err\n", "\(r)")
    }

    /// A second wait returns the first result and touches no pid: the reaped child's pid
    /// may already belong to another test's child, which a second waitpid would reap.
    @Test func waitingTwiceReturnsTheFirstResult() throws {
        let dir = try Scenario.makeDirectory(prefix: "mlv-harness")
        defer { Scenario.removeTree(dir) }
        let child = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "echo once; exit 4"], directory: dir)
        let first = child.wait()
        child.send(SIGKILL)  // a no-op now
        let second = child.wait()
        #expect(first.status == 4 && first.stdout == "once\n" && first.harnessError == nil, "\(first)")
        #expect(second.status == first.status && second.stdout == first.stdout && second.harnessError == nil, "\(second)")
    }
}
