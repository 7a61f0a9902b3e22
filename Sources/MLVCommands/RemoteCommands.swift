import ArgumentParser
import MLVBasics
import MLVKit
import MLVModel
import MLVRemote

/// `-j N` for commands that transfer objects.
struct TransferOptions: ParsableArguments {
    @Option(name: [.customShort("j"), .customLong("jobs")], help: "Transfers to run at once.")
    var jobs = 4

    func validate() throws {
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64") }
    }
}

/// Opens the store and a remote (nil: the default one) and runs a transfer with a
/// progress line on stderr when it is a terminal.
func transfer<T>(_ store: StoreOptions, remote name: String?, verb: String,
                 _ body: (Repository, RemoteSettings, any Remote, Progress?) throws -> T) throws -> (RemoteSettings, T) {
    let repo = try store.open()
    let (settings, target) = try repo.remote(named: name)
    let progress = terminalProgress("\(verb) \(settings.name)")
    defer { endProgress(progress) }
    return (settings, try body(repo, settings, target, progress))
}

struct RemoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remote",
        abstract: "Configure remotes: a shared directory or an S3-compatible bucket.",
        subcommands: [RemoteAdd.self, RemoteList.self, RemoteRemove.self])
}

struct RemoteAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a remote after checking it honours conditional writes.",
        discussion: """
            URL is a directory path (created if missing) or s3://BUCKET/PREFIX. No credentials are \
            stored: S3 remotes read the standard AWS environment variables and shared files. A remote \
            that ignores If-None-Match/If-Match, or was made by a newer mlv or with other chunk sizes, \
            is refused. Exit codes: 0 ok; 1 the remote could not be reached; 2 no store; 5 refused \
            (bad name, exists, unsafe or incompatible remote).
            """)
    @Argument(help: "Name of the remote (e.g. origin).") var name: String
    @Argument(help: "A directory path or s3://bucket/prefix.") var url: String
    @Option(help: "S3 endpoint other than AWS, e.g. http://127.0.0.1:9000.") var endpoint: String?
    @Option(help: "S3 region (default: from the environment, else us-east-1).") var region: String?
    @OptionGroup var store: StoreOptions

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            try repo.addRemote(RemoteSettings(name: name, url: url, endpoint: endpoint, region: region))
            say("added remote \(name): \(try repo.remoteSettings(name).url)")
        }
    }
}

struct RemoteList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the remotes.", discussion: "Exit codes: 0 ok; 2 no store.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let all = try store.open().remotes()
            if output.json {
                sayJSON(.array(all.map { r in
                    var o: [String: JSON] = ["name": .string(r.name), "url": .string(r.url)]
                    if let e = r.endpoint { o["endpoint"] = .string(e) }
                    if let g = r.region { o["region"] = .string(g) }
                    return .object(o)
                }))
                return
            }
            if all.isEmpty { say("no remotes (add one with 'mlv remote add NAME URL')"); return }
            say(table([["NAME", "URL", "ENDPOINT"]] + all.map { [$0.name, $0.url, $0.endpoint ?? ""] }))
        }
    }
}

struct RemoteRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Forget a remote (nothing on the remote changes).",
        discussion: "Exit codes: 0 ok; 2 no such remote.")
    @Argument(help: "Name of the remote.") var name: String
    @OptionGroup var store: StoreOptions

    func run() throws {
        try MLVCommands.run {
            try store.open().removeRemote(name)
            say("removed remote \(name)")
        }
    }
}

struct Push: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Send versions, registries and the objects they need to a remote.",
        discussion: """
            Only objects the remote lacks travel, in packs of at most 64 MiB; refs are written last, \
            so an interrupted push leaves the remote consistent and a retry resends nothing that \
            arrived. A version number the remote already has for another version, or a stage or alias \
            that moved there since your last fetch, refuses the push (run 'mlv pull'). With REFs, only \
            those are pushed: NAME sends every version of the artifact, its aliases and its registry; \
            NAME@vN or NAME@STAGE sends that version and, for a model with a registry, its registry \
            (stages, aliases, audit events) and the versions the registry names. The stage \
            configuration goes only with a full push. Exit codes: 0 ok; 1 the remote could not be reached; 2 unknown \
            remote or ref; 3 conflict; 4 a needed object is damaged here; 5 incompatible remote.
            """)
    @Argument(help: "Remote name (default: origin, or the only one).") var remote: String?
    @Argument(help: "Artifacts (NAME) or versions (NAME@vN, NAME@STAGE) to push (default: everything).") var refs: [String] = []
    @OptionGroup var transfer: TransferOptions
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let (settings, r) = try MLVCommands.transfer(store, remote: remote, verb: "push") { repo, settings, target, progress in
                try repo.push(to: target, remoteName: settings.name, refs: refs, jobs: transfer.jobs, progress: progress)
            }
            if output.json {
                sayJSON(.object(["remote": .string(settings.name), "packs": .int(Int64(r.packs)), "objects": .int(Int64(r.objects)),
                                 "bytes": .int(r.bytes), "refs": .array(r.refsUpdated.map { .string($0) })]))
                return
            }
            if r.upToDate { say("\(settings.name) is up to date"); return }
            say("pushed \(r.objects) objects in \(r.packs) packs (\(humanBytes(r.bytes))) to \(settings.name)")
            for ref in r.refsUpdated { say("  \(ref)") }
        }
    }
}

struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Read a remote's refs, registry events and small objects; file contents stay there until needed.",
        discussion: """
            Local refs do not change (see 'mlv pull'). What the remote's refs were is kept under \
            .mlv/remotes/NAME/. Everything received is verified by hash. Exit codes: 0 ok; 1 the \
            remote could not be reached; 2 unknown remote; 4 the remote holds damaged objects (named, \
            not stored); 5 incompatible remote.
            """)
    @Argument(help: "Remote name (default: origin, or the only one).") var remote: String?
    @OptionGroup var transfer: TransferOptions
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let (settings, r) = try MLVCommands.transfer(store, remote: remote, verb: "fetch") { repo, settings, target, progress in
                try repo.fetch(from: target, remoteName: settings.name, jobs: transfer.jobs, progress: progress)
            }
            if output.json {
                sayJSON(.object(["remote": .string(settings.name), "objects": .int(Int64(r.objects)), "bytes": .int(r.bytes),
                                 "changed": .array(r.refsChanged.map { .string($0) }),
                                 "damaged": .array(r.corrupt.keys.sorted().map { .string($0.hex) })]))
            } else {
                say(r.refsChanged.isEmpty ? "\(settings.name): nothing new" : "\(settings.name): \(r.refsChanged.count) refs new or moved")
                for ref in r.refsChanged { say("  \(ref)") }
            }
            if !r.corrupt.isEmpty {
                throw MLVError.damaged("\(settings.name) holds damaged objects (not stored): "
                                       + r.corrupt.keys.sorted().map { "\($0.hex) (\(r.corrupt[$0]!))" }.joined(separator: ", "))
            }
        }
    }
}

struct Pull: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: "Fetch, download what the remote's refs need, and make its versions local.",
        discussion: """
            A version number both sides made differently offline goes to the remote's version; yours \
            gets the next free number and the change is reported. Registries fast-forward; a registry \
            changed on both sides is reported as a conflict and left as it is, unless --rebase-registry \
            is given: then it takes the remote's events and records yours again on top of them (new \
            events by the same actors, each saying it was re-applied and naming the original), \
            skipping and reporting any that no longer apply. A model version \
            (NAME@vN) brings its registry and the versions the registry's events name. With --lazy, file \
            contents stay on the remote until a checkout needs them. Exit codes: 0 ok; 1 the remote \
            could not be reached; 2 unknown remote or ref; 3 conflicts (everything else was applied); \
            4 the remote holds damaged objects (nothing changed); 5 incompatible remote.
            """)
    @Argument(help: "Remote name (default: origin, or the only one).") var remote: String?
    @Argument(help: "Artifacts or versions to pull (NAME, NAME@vN; default: everything).") var refs: [String] = []
    @Flag(help: "Leave file contents on the remote until a checkout needs them.") var lazy = false
    @Flag(help: "A model registry changed on both sides: take the remote's events and re-apply yours on top.")
    var rebaseRegistry = false
    @OptionGroup var transfer: TransferOptions
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let (settings, r) = try MLVCommands.transfer(store, remote: remote, verb: "pull") { repo, settings, target, progress in
                try repo.pull(from: target, remoteName: settings.name, refs: refs, lazy: lazy, rebaseRegistries: rebaseRegistry,
                              jobs: transfer.jobs, progress: progress)
            }
            renderPull(r, remote: settings.name, json: output.json)
            if !r.conflicts.isEmpty { throw ExitCode(MLVExit.conflict) }
        }
    }
}

func renderPull(_ r: PullResult, remote: String, json: Bool) {
    if json {
        sayJSON(.object([
            "remote": .string(remote), "objects": .int(Int64(r.fetch.objects)), "bytes": .int(r.fetch.bytes),
            "created": .array(r.created.map { .string($0) }), "moved": .array(r.moved.map { .string($0) }),
            "renumbered": .array(r.renumbered.map { .object(["artifact": .string($0.artifact), "from": .int(Int64($0.from)), "to": .int(Int64($0.to))]) }),
            "replayed": .array(r.replayed.map { .string($0) }),
            "conflicts": .array(r.conflicts.map { .string($0) }),
        ]))
        return
    }
    say("received \(r.fetch.objects) objects (\(humanBytes(r.fetch.bytes))) from \(remote)")
    for c in r.created { say("  new \(c)") }
    for m in r.moved { say("  moved \(m)") }
    for n in r.renumbered {
        say("  renumbered your \(n.artifact)@v\(n.from) to v\(n.to): \(remote) made v\(n.from) first")
    }
    for e in r.replayed { say("  re-applied \(e)") }
    for c in r.conflicts { printError("conflict: \(c)") }
}

struct Clone: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clone",
        abstract: "Make a new store from a remote: init, add it as origin, pull everything.",
        discussion: """
            The new store takes the remote's chunk sizes. With --lazy, file contents stay on the remote \
            until a checkout needs them. Exit codes: 0 ok; 1 the remote could not be reached; 2 the \
            remote holds no store; 4 it holds damaged objects; 5 DIR already holds a store.
            """)
    @Argument(help: "A directory path or s3://bucket/prefix.") var url: String
    @Argument(help: "Directory to create the store in.") var directory: String
    @Option(help: "S3 endpoint other than AWS.") var endpoint: String?
    @Option(help: "S3 region.") var region: String?
    @Flag(help: "Leave file contents on the remote until a checkout needs them.") var lazy = false
    @OptionGroup var transfer: TransferOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            var settings = RemoteSettings(name: "origin", url: url, endpoint: endpoint, region: region)
            if !url.contains("://") { settings.url = FS.absolute(url) }
            let target = try Repository.connect(settings)
            let progress = terminalProgress("clone")
            defer { endProgress(progress) }
            let (repo, r) = try Repository.clone(settings, remote: target, into: directory, lazy: lazy, jobs: transfer.jobs, progress: progress)
            endProgress(progress)
            if !output.json { say("cloned \(settings.url) into \(repo.root)") }
            renderPull(r, remote: "origin", json: output.json)
            if !r.conflicts.isEmpty { throw ExitCode(MLVExit.conflict) }
        }
    }
}
