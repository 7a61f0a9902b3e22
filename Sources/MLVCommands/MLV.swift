import ArgumentParser

/// The root command.
public struct MLV: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "mlv",
        abstract: "Version datasets, models and runs in a content-addressed store.",
        subcommands: []
    )
    public init() {}
}
