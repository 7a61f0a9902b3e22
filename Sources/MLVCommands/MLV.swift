import ArgumentParser

/// The root command.
public struct MLV: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "mlv",
        abstract: "Version datasets in a content-addressed store next to your code.",
        discussion: """
            Refs: NAME (latest version), NAME@vN, NAME@ALIAS, dataset:NAME@vN, NAME@vN#SPLIT, \
            or a unique hex prefix (6+ digits) of a manifest id.

            Exit codes: 0 success; 1 check failed (fsck damage, status changes with \
            --exit-code); 2 not found; 3 conflict; 4 store damaged; 5 refused (bad input); \
            64 usage error.
            """,
        version: "mlv 0.1.0 (store format 1)",
        subcommands: [
            Init.self, Add.self, Datasets.self, Log.self, Ls.self, Show.self, Status.self, Diff.self,
            Checkout.self, Hash.self, Chunks.self, Fsck.self, GC.self, Config.self,
        ]
    )
    public init() {}
}
