import ArgumentParser
@testable import MLVCommands
import Testing

/// Every command names itself: without `commandName` ArgumentParser derives the name with
/// `String(describing:)` of the type, a runtime conformance scan that cost every `mlv`
/// invocation about a fifth of its start-up (2-3 ms) when any command lacked one.
@Suite struct CommandTreeTests {
    @Test func everyCommandHasAnExplicitName() {
        var missing: [String] = []
        var seen = 0
        func visit(_ command: ParsableCommand.Type, path: String) {
            seen += 1
            let name = command.configuration.commandName
            if name == nil { missing.append(path + " " + String(describing: command)) }
            for sub in command.configuration.subcommands { visit(sub, path: path + " " + (name ?? "?")) }
        }
        visit(MLV.self, path: "")
        #expect(seen > 40)
        #expect(missing.isEmpty, "commands without commandName: \(missing)")
    }
}
