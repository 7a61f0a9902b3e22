import ArgumentParser
import MLVBasics
import MLVKit

/// Where the store is; shared by every command that uses one.
struct StoreOptions: ParsableArguments {
    @Option(name: .customLong("store"), help: ArgumentHelp("Directory to search upward from for .mlv (default: the current directory).", valueName: "DIR"))
    var directory: String?

    func open(tolerateDamage: Bool = false) throws -> Repository {
        try Repository.open(searchingFrom: directory ?? FS.currentDirectory(), tolerateDamage: tolerateDamage)
    }
}

/// `--json` for read commands.
struct JSONOption: ParsableArguments {
    @Flag(name: .long, help: "Print JSON (one line, sorted keys) instead of text.")
    var json = false
}

/// What every new version records besides its files; shared by `add dataset` and `add model`.
struct VersionOptions: ParsableArguments {
    @Option(name: .shortAndLong, help: "What this version is.") var message = ""
    @Option(name: .customLong("from"), help: ArgumentHelp("An input this version was made from, as REF or ROLE=REF (default role: parent). Repeatable.", valueName: "REF"))
    var from: [String] = []
    @Option(name: .customLong("code"), help: ArgumentHelp("A source file that produced this version; snapshotted. Repeatable.", valueName: "PATH"))
    var code: [String] = []
    @Option(name: .customLong("meta"), help: ArgumentHelp("A key=value note. Repeatable.", valueName: "KEY=VALUE"))
    var meta: [String] = []
}
