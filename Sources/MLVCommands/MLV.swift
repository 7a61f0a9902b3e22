import ArgumentParser

/// The root command.
public struct MLV: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "mlv",
        abstract: "Version datasets and models in a content-addressed store next to your code; promote models through stages with an audit trail.",
        discussion: """
            Refs: NAME (latest version), NAME@vN, NAME@ALIAS, NAME@STAGE (models), dataset:NAME@vN, \
            model:NAME@vN, NAME@vN#SPLIT, or a unique hex prefix (6+ digits) of a manifest id. A name \
            used by a dataset and a model needs its kind.

            Exit codes: 0 success; 1 check failed (fsck damage, audit --verify tampering, status \
            changes with --exit-code, blame --fail-if-stage or --fail-if-empty); 2 not found; 3 conflict; 4 store damaged; 5 refused (bad input); \
            64 usage error. 'mlv run' and 'mlv rerun' exit with the command's own status once it \
            has started.
            """,
        version: "mlv 0.1.0 (store format 1)",
        subcommands: [
            Init.self, Add.self, Datasets.self, Log.self, Ls.self, Show.self, Status.self, Diff.self,
            Runs.self, Logs.self, Metrics.self, Compare.self,
            Checkout.self, Run.self, Rerun.self, Models.self, RegistryBoard.self, Stage.self, Approve.self, Promote.self, Alias.self, Audit.self,
            RemoteCommand.self, Push.self, Fetch.self, Pull.self, Clone.self,
            LineageCommand.self, BlameCommand.self, TaintCommand.self, UntaintCommand.self, ReindexCommand.self,
            Hash.self, Chunks.self, Fsck.self, GC.self, Unlock.self, Config.self,
        ]
    )
    public init() {}
}
