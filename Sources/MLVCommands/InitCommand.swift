import ArgumentParser
import MLVBasics
import MLVKit
import MLVStore

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a .mlv store in a directory.",
        discussion: "Chunk sizes are fixed when the store is created and recorded in .mlv/config. Exit codes: 0 ok; 2 no such directory; 5 a store is already there or the sizes are invalid.")

    @Argument(help: "Directory to create the store in (default: the current directory).")
    var directory: String?

    @Option(help: "Minimum chunk size in bytes.") var minChunk = ChunkerParameters.default.min
    @Option(help: "Average chunk size in bytes (a power of two).") var avgChunk = ChunkerParameters.default.avg
    @Option(help: "Maximum chunk size in bytes.") var maxChunk = ChunkerParameters.default.max

    func run() throws {
        try MLVCommands.run {
            let dir = directory ?? FS.currentDirectory()
            if !FS.isDirectory(dir) { throw MLVError.pathNotFound(dir) }
            let repo = try Repository.initialize(at: dir, chunker: ChunkerParameters(min: minChunk, avg: avgChunk, max: maxChunk))
            say("Initialized empty mlv store in \(repo.storePath)")
        }
    }
}
