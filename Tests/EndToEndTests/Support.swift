import MLVModel
import MLVTestSupport
import Testing

/// A temporary working directory in which the real `mlv` binary is run.
final class Session: @unchecked Sendable {
    let directory: String
    let environment: [String: String]

    /// - Parameter inMemory: on tmpfs where there is one (see `TemporaryDirectory.make`).
    init(identity: String = "e2e@test", inMemory: Bool = false) throws {
        directory = try Scenario.makeDirectory(prefix: "mlv-e2e", inMemory: inMemory)
        environment = ["MLV_IDENTITY": identity]
    }

    deinit {
        Scenario.removeTree(directory)
    }

    func path(_ relative: String) -> String {
        relative.isEmpty ? directory : directory + "/" + relative
    }

    func write(_ relative: String, _ entries: KeyValuePairs<String, ScenarioEntry>) throws {
        try Scenario.write(entries, under: path(relative))
    }

    func write(_ relative: String, _ entry: ScenarioEntry) throws {
        try Scenario.write(entry, at: path(relative))
    }

    /// Runs `mlv ARGS` here and checks the exit status; successful runs must leave
    /// stderr empty (progress goes to stderr only when it is a terminal, and it is a
    /// file here).
    @discardableResult
    func mlv(_ arguments: String..., status: Int32 = 0, in relative: String = "",
             sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessResult {
        try run(arguments, status: status, in: relative, sourceLocation: sourceLocation)
    }

    @discardableResult
    func run(_ arguments: [String], status: Int32 = 0, in relative: String = "",
             sourceLocation: SourceLocation = #_sourceLocation) throws -> ProcessResult {
        let r = try MLVBinary.run(arguments, in: path(relative), environment: environment)
        #expect(!r.timedOut, "\(r)", sourceLocation: sourceLocation)
        #expect(r.status == status, "\(r)", sourceLocation: sourceLocation)
        if status == 0 {
            #expect(r.stderr.isEmpty, "\(r)", sourceLocation: sourceLocation)
        }
        return r
    }

    /// Runs `mlv ARGS --json` and parses stdout with mlv's strict JSON parser.
    func json(_ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) throws -> JSON {
        let r = try run(arguments + ["--json"], sourceLocation: sourceLocation)
        #expect(r.lines.count == 1, "one line of JSON: \(r)", sourceLocation: sourceLocation)
        return try JSON.parse(Array(r.stdout.utf8))
    }
}
