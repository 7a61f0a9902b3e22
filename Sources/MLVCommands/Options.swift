import ArgumentParser
import MLVBasics
import MLVKit

/// Where the store is; shared by every command that uses one.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("store"), help: ArgumentHelp("Directory to search upward from for .mlv (default: the current directory).", valueName: "DIR"))
    var directory: String?

    func open() throws -> Repository {
        try Repository.open(searchingFrom: directory ?? FS.currentDirectory())
    }
}

/// `--json` for read commands.
struct JSONOption: ParsableArguments {
    @Flag(name: .long, help: "Print JSON (one line, sorted keys) instead of text.")
    var json = false
}
