import ArgumentParser
import MLVBasics
import MLVKit
import MLVModel

struct Add: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Version a dataset or a model.",
        subcommands: [AddDataset.self, AddModel.self])
}

struct AddDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Version a file or directory as the next version of a dataset.",
        discussion: """
            Prints NAME@vN, the manifest id, the number of files and bytes, and the bytes newly \
            stored. Adding an unchanged directory creates no new version. \
            Exit codes: 0 ok; 2 path or --from ref not found; 5 invalid name or unsafe path.
            """)

    @Argument(help: "Dataset name: lowercase letters, digits, '.', '_' and '-'.") var name: String
    @Argument(help: "File or directory to version.") var path: String
    @OptionGroup var version: VersionOptions
    @Option(name: .customLong("split"), help: ArgumentHelp("A named split: NAME=SUBPATH (e.g. train=train/). Repeatable.", valueName: "NAME=SUBPATH"))
    var splits: [String] = []
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            var request = AddDatasetRequest(name: name, path: path)
            request.message = version.message
            request.from = version.from
            request.code = version.code
            request.splits = try keyValuePairs(splits, "--split")
            request.meta = try keyValuePairs(version.meta, "--meta")
            let progress = terminalProgress("hashing")
            let result = try repo.addDataset(request, progress: progress)
            endProgress(progress)
            renderAdd(name: name, result: result, json: output.json)
        }
    }
}

/// Parses repeated KEY=VALUE options.
func keyValuePairs(_ items: [String], _ flag: String) throws -> [String: String] {
    var out: [String: String] = [:]
    for item in items {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
            throw ValidationError("\(flag) '\(item)': expected KEY=VALUE")
        }
        let key = String(item[..<eq])
        if out[key] != nil { throw ValidationError("\(flag) '\(key)' given twice") }
        out[key] = String(item[item.index(after: eq)...])
    }
    return out
}

/// Prints what `add dataset` or `add model` did.
func renderAdd(name: String, result: AddDatasetResult, json: Bool) {
    if json {
        sayJSON(.object([
            "name": .string(name), "version": .int(Int64(result.version)), "id": .string(result.id.hex),
            "created": .bool(result.created), "files": .int(result.files), "bytes": .int(result.bytes),
            "newBytes": .int(Int64(result.newBytesStored)), "filesHashed": .int(Int64(result.filesHashed)),
        ]))
    } else if result.created {
        say("\(name)@v\(result.version) \(result.id.hex)")
        say("\(result.files) files, \(humanBytes(result.bytes)), \(humanBytes(Int64(result.newBytesStored))) new bytes stored")
    } else {
        say("\(name): no changes since \(name)@v\(result.version) (\(result.id.short)); no new version created")
    }
}
