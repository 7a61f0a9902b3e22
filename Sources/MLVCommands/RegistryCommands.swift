import ArgumentParser
import MLVBasics
import MLVKit
import MLVModel

struct AddModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Version a model file or directory as the next version of a model.",
        discussion: """
            Prints NAME@vN, the manifest id, the number of files and bytes, and the bytes newly \
            stored. Record the data it was trained and evaluated on with --from ROLE=REF \
            (e.g. --from train=mnist@v2#train --from eval=mnist@v2#eval). Adding unchanged \
            files with the same inputs creates no new version. \
            Exit codes: 0 ok; 2 path or --from ref not found; 5 invalid name, unsafe path or empty identity.
            """)

    @Argument(help: "Model name: lowercase letters, digits, '.', '_' and '-'.") var name: String
    @Argument(help: "File or directory to version.") var path: String
    @OptionGroup var version: VersionOptions
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            var request = AddModelRequest(name: name, path: path)
            request.message = version.message
            request.from = version.from
            request.code = version.code
            request.meta = try keyValuePairs(version.meta, "--meta")
            let progress = terminalProgress("hashing")
            let result = try repo.addModel(request, progress: progress)
            endProgress(progress)
            renderAdd(name: name, result: result, json: output.json)
        }
    }
}

struct LogModel: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "model", abstract: "List a model's versions, newest first, with the stages and aliases they hold.",
                                                    discussion: "Registry changes are in 'mlv audit'. Exit codes: 0 ok; 2 no such model.")
    @Argument(help: "Model name.") var name: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            let versions = try repo.modelVersions(of: name).reversed()
            let state = try repo.registryHead(model: name)?.event.state ?? RegistryState()
            func aliases(_ v: Int) -> [String] { state.aliases.filter { $0.value.version == v }.keys.sorted() }
            if output.json {
                sayJSON(.array(versions.map { v in .object([
                    "version": .int(Int64(v.version)), "id": .string(v.id.hex), "files": .int(v.manifest.files),
                    "bytes": .int(v.manifest.bytes), "created": .string(v.manifest.created),
                    "author": .string(v.manifest.author), "message": .string(v.manifest.message),
                    "stages": .array(state.stages(of: v.version).map { .string($0) }),
                    "aliases": .array(aliases(v.version).map { .string($0) }),
                ]) }))
                return
            }
            for v in versions {
                let marks = (state.stages(of: v.version) + aliases(v.version).map { "@" + $0 }).joined(separator: " ")
                say("\(name)@v\(v.version)  \(v.id.short)  \(v.manifest.created)  \(v.manifest.author)" + (marks.isEmpty ? "" : "  [\(marks)]"))
                say("    \(v.manifest.files) files, \(humanBytes(v.manifest.bytes))" + (v.manifest.message.isEmpty ? "" : "  \(v.manifest.message)"))
            }
        }
    }
}

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List every model: latest version, how many versions, who holds which stage.",
        discussion: "Exit codes: 0 ok; 2 no store; 4 a damaged manifest or event.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            let all = try repo.models(manifests: output.json)
            let taints = try shownTaints(repo, all)
            if output.json {
                sayJSON(.array(all.map { m in .object([
                    "name": .string(m.name), "latest": .int(Int64(m.latest)), "id": .string(m.latestID.hex),
                    "versions": .int(Int64(m.versions)), "created": .string(m.manifest?.created ?? ""), "author": .string(m.manifest?.author ?? ""),
                    "stages": .object(m.state.stages.mapValues { .array($0.map { .int(Int64($0.version)) }) }),
                    "aliases": .object(m.state.aliases.mapValues { .int(Int64($0.version)) }),
                    "tainted": .object((taints[m.name] ?? [:]).mapValues { .string($0) }),
                ]) }))
                return
            }
            if all.isEmpty { say("no models yet (add one with 'mlv add model NAME PATH')"); return }
            let anyTaint = !taints.isEmpty
            say(table([["NAME", "LATEST", "VERSIONS", "STAGES", "ALIASES"] + (anyTaint ? ["TAINTED"] : [])] + all.map { m in
                [m.name, "v\(m.latest)", "\(m.versions)", stagesText(m.state), aliasesText(m.state)]
                    + (anyTaint ? [(taints[m.name] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "; ")] : [])
            }))
        }
    }
}

struct RegistryBoard: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "The board: per model and stage, the holder, since when and by whom.",
        discussion: "Exit codes: 0 ok; 2 unknown model; 4 a damaged event.")
    @Argument(help: "Only this model.") var name: String?
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            let config = try repo.stageConfig()
            let models = try repo.models(only: name, manifests: false)
            let taints = try shownTaints(repo, models)
            if output.json {
                sayJSON(.array(models.map { m in .object([
                    "name": .string(m.name), "head": m.head.map { .string($0.hex) } ?? .null,
                    "stages": .object(m.state.stages.mapValues { .array($0.map(holderJSON)) }),
                    "aliases": .object(m.state.aliases.mapValues(holderJSON)),
                    "pending": .array(m.state.pending.map(approvalJSON)),
                    "tainted": .object((taints[m.name] ?? [:]).mapValues { .string($0) }),
                ]) }))
                return
            }
            // One write for the whole board (75,000 lines for 5,000 models), not one per line.
            var out = ""
            out.reserveCapacity(models.count * 1024)
            let configured = Set(config.stages.keys)
            for (i, m) in models.enumerated() {
                if i > 0 { out += "\n" }
                out += "\(m.name) (latest v\(m.latest))\n"
                var rows: [[String]] = [["  STAGE", "HOLDER", "SINCE", "BY", taints.isEmpty ? "" : "TAINTED"]]
                let stages = configured.union(m.state.stages.keys).sorted()
                for s in stages {
                    let holders = m.state.stages[s] ?? []
                    if holders.isEmpty { rows.append(["  " + s, "-", "", "", ""]) }
                    for h in holders { rows.append(["  " + s, "v\(h.version)", h.since, h.by, taints[m.name]?["v\(h.version)"] ?? ""]) }
                }
                for (a, h) in m.state.aliases.sorted(by: { $0.key < $1.key }) {
                    rows.append(["  @" + a, "v\(h.version)", h.since, h.by, taints[m.name]?["v\(h.version)"] ?? ""])
                }
                out += table(rows) + "\n"
                for p in m.state.pending {
                    out += "  pending: \(p.actor) approved v\(p.version) for \(p.stage) at \(p.time)" + (p.message.isEmpty ? "" : ": \(p.message)") + "\n"
                }
            }
            if models.isEmpty { out = "no models yet (add one with 'mlv add model NAME PATH')\n" }
            sayText(out)
        }
    }
}

struct Stage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stage",
        abstract: "List and configure the stages models are promoted through.",
        discussion: "Stages are per repository, kept in .mlv/stages. Defaults: staging, production (single holder), archived.",
        subcommands: [StageList.self, StageAdd.self, StageSet.self, StageRemove.self])
}

struct StageList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the configured stages and their rules.",
                                                    discussion: "Exit codes: 0 ok; 2 no store; 4 damaged stage file.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let config = try store.open().stageConfig()
            let sorted = config.stages.sorted { $0.key < $1.key }
            if output.json {
                sayJSON(.array(sorted.map { n, p in .object([
                    "name": .string(n), "approvals": .int(Int64(p.approvals)), "single": .bool(p.single),
                    "distinctApprovers": .bool(p.distinctApprovers),
                ]) }))
                return
            }
            say(table([["STAGE", "APPROVALS", "HOLDERS", "APPROVERS"]] + sorted.map { n, p in
                [n, "\(p.approvals)", p.single ? "single" : "many", p.distinctApprovers ? "distinct from promoter" : "any"]
            }))
        }
    }
}

struct StageRules: ParsableArguments {
    @Option(help: "Approvals a promotion into the stage needs.") var approvals: Int?
    @Flag(inversion: .prefixedNo, help: "At most one version holds the stage; promoting moves the previous holder to archived.")
    var single: Bool?
    @Flag(inversion: .prefixedNo, help: "Approvals by the person promoting do not count.")
    var distinctApprovers: Bool?

    func validate() throws {
        if let approvals, approvals < 0 || approvals > 1000 { throw ValidationError("--approvals must be between 0 and 1000") }
    }
}

struct StageAdd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add a stage.",
                                                    discussion: "Exit codes: 0 ok; 3 stage file locked; 5 invalid name or the stage exists.")
    @Argument(help: "Stage name.") var name: String
    @OptionGroup var rules: StageRules
    @OptionGroup var store: StoreOptions

    func run() throws {
        try MLVCommands.run {
            try store.open().addStage(name, policy: StagePolicy(approvals: rules.approvals ?? 0, single: rules.single ?? false,
                                                                distinctApprovers: rules.distinctApprovers ?? false))
            say("added stage \(name)")
        }
    }
}

struct StageSet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set", abstract: "Change a stage's rules; rules not given stay.",
                                                    discussion: "Exit codes: 0 ok; 2 unknown stage; 3 stage file locked; 5 refused.")
    @Argument(help: "Stage name.") var name: String
    @OptionGroup var rules: StageRules
    @OptionGroup var store: StoreOptions

    func run() throws {
        try MLVCommands.run {
            try store.open().setStage(name, approvals: rules.approvals, single: rules.single, distinctApprovers: rules.distinctApprovers)
            say("updated stage \(name)")
        }
    }
}

struct StageRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a stage that no version holds.",
                                                    discussion: "Exit codes: 0 ok; 2 unknown stage; 3 stage file locked; 5 a version holds it.")
    @Argument(help: "Stage name.") var name: String
    @OptionGroup var store: StoreOptions

    func run() throws {
        try MLVCommands.run {
            try store.open().removeStage(name)
            say("removed stage \(name)")
        }
    }
}

struct Approve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Sign off a model version for a stage.",
        discussion: """
            An approval is for one version and one stage; it is used up by the promotion it \
            allows. Recorded as an event in the model's audit chain. \
            Exit codes: 0 ok; 2 unknown version or stage; 3 the registry changed meanwhile; 5 refused.
            """)
    @Argument(help: "A model version: NAME@vN, NAME@ALIAS, NAME@STAGE.") var ref: String
    @Option(name: .customLong("for"), help: ArgumentHelp("The stage it is approved for.", valueName: "STAGE")) var stage: String
    @Option(name: .shortAndLong, help: "Why.") var message: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let head = try store.open().approve(ref, for: stage, message: message)
            renderEvent(head, json: output.json)
        }
    }
}

struct Promote: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "promote", abstract: "Move a version into a stage.", subcommands: [PromoteModel.self])
}

struct PromoteModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Move a model version into a stage, with the approvals the stage requires.",
        discussion: """
            A version holds one stage at a time. Promoting into a single-holder stage moves \
            the previous holder to archived in the same event: one atomic move of the model's \
            head ref, so the stage never has zero or two holders. If another change to the \
            model lands first, this one fails and changes nothing. A version that is tainted \
            (see 'mlv taint'), itself or through anything it was made from, is refused unless \
            --force is given; the event then records that it was forced and why. \
            Exit codes: 0 ok; 2 unknown version or stage; 3 the registry changed since it was read; \
            5 approvals missing or already there, or the version is tainted.
            """)
    @Argument(help: "A model version: NAME@vN, NAME@ALIAS, NAME@STAGE.") var ref: String
    @Option(name: .customLong("to"), help: ArgumentHelp("The stage.", valueName: "STAGE")) var stage: String
    @Option(name: .shortAndLong, help: "Why.") var message: String
    @Flag(help: "Promote a tainted version anyway; -m is the recorded reason.") var force = false
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let head = try store.open().promote(ref, to: stage, message: message, force: force)
            renderEvent(head, json: output.json)
        }
    }
}

struct Alias: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alias",
        abstract: "Set or remove a free-form name on a model version (latest is automatic).",
        subcommands: [AliasSet.self, AliasRemove.self])
}

struct AliasSet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Point NAME@ALIAS at a version.",
        discussion: "Exit codes: 0 ok; 2 unknown version; 3 the registry changed meanwhile; 5 invalid or reserved alias, or already set.")
    @Argument(help: "A model version: NAME@vN.") var ref: String
    @Argument(help: "The alias.") var alias: String
    @Option(name: .shortAndLong, help: "Why.") var message = ""
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            renderEvent(try store.open().setAlias(ref, alias: alias, message: message), json: output.json)
        }
    }
}

struct AliasRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove", abstract: "Remove an alias from a model.",
        discussion: "Exit codes: 0 ok; 2 unknown model or alias; 3 the registry changed meanwhile.")
    @Argument(help: "The model.") var name: String
    @Argument(help: "The alias.") var alias: String
    @Option(name: .shortAndLong, help: "Why.") var message = ""
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            renderEvent(try store.open().removeAlias(model: name, alias: alias, message: message), json: output.json)
        }
    }
}

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Walk a model's registry history: who moved what, when, why, with whose approval.",
        discussion: """
            Events are hash-chained per model: each names the previous one's id. Taints and \
            untaints form one more chain, checked by --verify without a model name. --verify \
            re-reads every event from the head back (each read re-hashes it), checks the seq \
            numbers, links and times, and looks for events newer than the head (a head moved \
            back) in the derived index .mlv/index.sqlite, or with --full in every stored \
            object; it names the first bad event. It also checks that the index rows plain audit \
            prints match the events ('mlv reindex' rebuilds them). --at T shows which version held each stage at T. \
            Exit codes: 0 ok; 1 --verify found tampering; 2 unknown model or stage; 5 --at does not parse.
            """)
    @Argument(help: "NAME or NAME@STAGE (default: every model).") var target: String?
    @Option(help: ArgumentHelp("A time: 2026-05-01, 2026-05-01T12:00Z or 2026-05-01T12:00:00Z (UTC).", valueName: "TIME"))
    var at: String?
    @Flag(help: "Re-hash and check every event's chain.") var verify = false
    @Flag(help: "With --verify: search every stored object for events newer than a head, instead of the derived index.")
    var full = false
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func validate() throws {
        if full && !verify { throw ValidationError("--full goes with --verify") }
    }

    func run() throws {
        var tampered = false
        try MLVCommands.run {
            let repo = try store.open()
            var model: String?, stage: String?
            if let target {
                let parts = target.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
                model = parts[0]
                if parts.count == 2 {
                    stage = parts[1]
                    let config = try repo.stageConfig()
                    if config.stages[parts[1]] == nil {
                        throw MLVError.notFound("no stage '\(parts[1])' is configured (stages: \(config.stages.keys.sorted().joined(separator: ", ")))")
                    }
                }
            }
            var time: Int64?
            if let at {
                guard let t = Timestamp.parse(at) else {
                    throw MLVError.invalidArgument("--at '\(at)' is not a time; use 2026-05-01, 2026-05-01T12:00Z or 2026-05-01T12:00:00Z (UTC)")
                }
                time = t
            }
            let models = try model.map { m in _ = try repo.history(model: m); return [m] } ?? repo.modelNames()
            if verify {
                var reports = try repo.verifyChains(models: models, full: full)
                if model == nil, (try? repo.refs.chainHead("taint/head")) != nil {
                    reports.append(repo.verifyTaintChain())
                }
                tampered = reports.contains { !$0.isIntact }
                if output.json {
                    sayJSON(.array(reports.map { r in .object([
                        "model": .string(r.model), "events": .int(Int64(r.events)), "intact": .bool(r.isIntact),
                        "problem": r.problem.map { .string($0) } ?? .null,
                    ]) }))
                } else {
                    for r in reports {
                        say(r.isIntact ? "\(r.model): \(r.events) events, chain intact" : "\(r.model): TAMPERED: \(r.problem!)")
                    }
                }
                return
            }
            if let time {
                var out: [UInt8] = [UInt8(ascii: "[")]
                var text = ""
                text.reserveCapacity(models.count * 64)
                let at = Timestamp.format(seconds: time)
                var atJSON: [UInt8] = []
                JSON.appendEscapedString(at, to: &atJSON)
                for (m, (state, seq)) in zip(models, try repo.registryStates(models: models, at: time)) {
                    var stages = state.stages
                    if let stage { stages = stages.filter { $0.key == stage } }
                    if output.json {
                        // {"at":..,"event":..,"model":..,"stages":{..}}, keys in canonical order,
                        // written straight into one buffer rather than one tree of every model.
                        out += out.count > 1 ? Array(",{\"at\":".utf8) : Array("{\"at\":".utf8)
                        out += atJSON
                        out += Array(",\"event\":".utf8)
                        if let seq { JSON.appendInt(Int64(seq), to: &out) } else { out += Array("null".utf8) }
                        out += Array(",\"model\":".utf8)
                        JSON.appendEscapedString(m, to: &out)
                        out += Array(",\"stages\":".utf8)
                        JSON.object(stages.mapValues { .array($0.map(holderJSON)) }).encodeCanonical(into: &out)
                        out.append(UInt8(ascii: "}"))
                        continue
                    }
                    // Appended piece by piece: 75,000 lines for a late T, no temporary per line.
                    text += m; text += " at "; text += at; text += ":\n"
                    if stages.isEmpty { text += "  " + (stage.map { "nothing held \($0)" } ?? "no stage was held") + "\n" }
                    for (s, holders) in stages.sorted(by: { $0.key < $1.key }) {
                        for h in holders {
                            text += "  "; text += s; text += ": v"; text += String(h.version); text += " (since "
                            text += h.since; text += ", by "; text += h.by; text += ")\n"
                        }
                    }
                }
                out.append(UInt8(ascii: "]"))
                if output.json { say(String(decoding: out, as: UTF8.self)) } else { sayText(text) }
                return
            }
            if !output.json {
                // Text: the trails (served from the event index where it holds a whole chain)
                // rendered by the 2 workers that read them, each into its own buffer, then
                // written in the models' order, stopping at the first model that fails.
                // About 4.5 KB of text per model on the generated store; capped, it grows past that.
                let reserve = min(models.count * 3072, 1 << 26)
                let sinks = [AuditSink(reserve: reserve), AuditSink(reserve: reserve)]
                if let stage, let model {
                    sinks[0].add(0, Result { AuditTrail(model: model, events: try stageHistory(repo, model: model, stage: stage)) })
                } else {
                    repo.forEachAuditTrail(models: models) { worker, i, trail in sinks[worker].add(i, trail) }
                }
                try AuditSink.write(sinks, count: models.count)
                return
            }
            // JSON: every event object with its state, read from the packs on 2 threads, 64
            // models at a time; nothing is printed when a model fails.
            var json: [UInt8] = [UInt8(ascii: "[")]
            for block in stride(from: 0, to: models.count, by: 64).map({ models[$0..<min($0 + 64, models.count)] }) {
                let rendered = try Parallel.map(Array(block), batch: 4) { m in
                    Result { try auditJSON(repo, model: m, stage: stage) }
                }
                for bytes in try rendered.map({ try $0.get() }) where !bytes.isEmpty {
                    if json.count > 1 { json.append(UInt8(ascii: ",")) }
                    json += bytes
                }
            }
            json.append(UInt8(ascii: "]"))
            say(String(decoding: json, as: UTF8.self))
        }
        if tampered { throw ExitCode(MLVExit.checkFailed) }
    }
}

/// A model's events, newest first; with `stage`, only those that concern that stage
/// (it names the stage, or the stage's holders changed).
func stageHistory(_ repo: Repository, model m: String, stage: String?) throws -> [(id: ObjectID, event: Event)] {
    let events = try repo.history(model: m)
    guard let stage else { return events }
    return events.enumerated().filter { i, e in
        let before = i + 1 < events.count ? events[i + 1].event.state.stages[stage] : nil
        return e.event.stage == stage || before != e.event.state.stages[stage]
    }.map(\.element)
}

/// One model's history as `mlv audit --json` prints it: its events' JSON objects joined
/// by commas (no brackets).
func auditJSON(_ repo: Repository, model m: String, stage: String?) throws -> [UInt8] {
    var out: [UInt8] = []
    for (n, (id, e)) in try stageHistory(repo, model: m, stage: stage).enumerated() {
        if n > 0 { out.append(UInt8(ascii: ",")) }
        out += JSON.object(["id": .string(id.hex), "event": e.json]).canonicalBytes()
    }
    return out
}

func stagesText(_ state: RegistryState) -> String {
    state.stages.sorted { $0.key < $1.key }.map { s, hs in "\(s)=" + hs.map { "v\($0.version)" }.joined(separator: ",") }
        .joined(separator: " ")
}

func aliasesText(_ state: RegistryState) -> String {
    state.aliases.sorted { $0.key < $1.key }.map { "\($0.key)=v\($0.value.version)" }.joined(separator: " ")
}

func holderJSON(_ h: Holder) -> JSON {
    .object(["version": .int(Int64(h.version)), "id": .string(h.id.hex), "since": .string(h.since), "by": .string(h.by)])
}

func approvalJSON(_ a: Approval) -> JSON {
    .object(["version": .int(Int64(a.version)), "stage": .string(a.stage), "actor": .string(a.actor), "time": .string(a.time),
             "message": .string(a.message)])
}

/// Prints what a registry change recorded.
func renderEvent(_ head: RegistryHead, json: Bool) {
    let e = head.event
    if json {
        sayJSON(.object(["id": .string(head.id.hex), "event": e.json]))
        return
    }
    say("\(e.model): \(describe(head)) (event #\(e.seq) \(head.id.short) by \(e.actor))")
    if e.action == .promote { say("\(e.model) now: \(stagesText(e.state))") }
}

/// For each model, `vN` -> "tainted via X: reason" for its latest version and every
/// version holding a stage or alias; empty (one ref read) when nothing is tainted.
func shownTaints(_ repo: Repository, _ models: [ModelSummary]) throws -> [String: [String: String]] {
    guard try !repo.taints().isEmpty else { return [:] }
    var shown: [ObjectID: (model: String, version: Int)] = [:]
    for m in models {
        shown[m.latestID] = (m.name, m.latest)
        for h in m.state.stages.values.joined() { shown[h.id] = (m.name, h.version) }
        for h in m.state.aliases.values { shown[h.id] = (m.name, h.version) }
    }
    var out: [String: [String: String]] = [:]
    for (id, marks) in try repo.taintMarks(of: Array(shown.keys)) {
        let (model, version) = shown[id]!
        out[model, default: [:]]["v\(version)"] = marks.map(\.summary).joined(separator: "; ")
    }
    return out
}
