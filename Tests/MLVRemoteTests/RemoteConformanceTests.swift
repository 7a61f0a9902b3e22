import MLVBasics
import MLVRemote
import MLVTestSupport
import Testing

@Suite("Remote conformance")
struct RemoteConformanceTests {
    @Test("InMemoryRemote", arguments: RemoteConformance.checks)
    func inMemory(_ check: RemoteConformance.Check) throws {
        try check.run { InMemoryRemote() }
    }
}
