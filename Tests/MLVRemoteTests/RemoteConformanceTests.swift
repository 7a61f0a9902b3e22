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

    @Test("DirectoryRemote", arguments: RemoteConformance.checks)
    func directory(_ check: RemoteConformance.Check) throws {
        var directories: [TemporaryDirectory] = []
        try check.run {
            let directory = try TemporaryDirectory(prefix: "mlv-remote")
            directories.append(directory)
            return try DirectoryRemote(path: directory.path)
        }
    }
}
