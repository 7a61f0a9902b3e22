import ArgumentParser
import MLVBasics
import MLVKit
import MLVModel

struct Datasets: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "datasets", abstract: "List every dataset with its latest version, size, when and who.",
                                                    discussion: "Exit codes: 0 ok; 2 no store; 4 a damaged manifest.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let all = try store.open().datasets()
            if output.json {
                sayJSON(.array(all.map { d in .object([
                    "name": .string(d.name), "version": .int(Int64(d.version)), "id": .string(d.id.hex),
                    "files": .int(d.manifest.files), "bytes": .int(d.manifest.bytes),
                    "created": .string(d.manifest.created), "author": .string(d.manifest.author),
                ]) }))
                return
            }
            if all.isEmpty { say("no datasets yet (add one with 'mlv add dataset NAME PATH')"); return }
            say(table([["NAME", "LATEST", "FILES", "SIZE", "CREATED", "BY"]] + all.map { d in
                [d.name, "v\(d.version)", "\(d.manifest.files)", humanBytes(d.manifest.bytes), d.manifest.created, d.manifest.author]
            }))
        }
    }
}

struct Log: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "log", abstract: "Show the versions of a dataset or a model; record a run or a metric.",
                                                    subcommands: [LogDataset.self, LogModel.self, LogRun.self, LogMetric.self])
}

struct LogDataset: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dataset", abstract: "List a dataset's versions, newest first.",
                                                    discussion: "Exit codes: 0 ok; 2 no such dataset.")
    @Argument(help: "Dataset name.") var name: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            let versions = try repo.versions(of: name).reversed()
            if versions.isEmpty { _ = try repo.resolve(name) }
            if output.json {
                sayJSON(.array(versions.map { v in .object([
                    "version": .int(Int64(v.version)), "id": .string(v.id.hex), "files": .int(v.manifest.files),
                    "bytes": .int(v.manifest.bytes), "created": .string(v.manifest.created),
                    "author": .string(v.manifest.author), "message": .string(v.manifest.message),
                ]) }))
                return
            }
            for v in versions {
                say("\(name)@v\(v.version)  \(v.id.short)  \(v.manifest.created)  \(v.manifest.author)")
                say("    \(v.manifest.files) files, \(humanBytes(v.manifest.bytes))" + (v.manifest.message.isEmpty ? "" : "  \(v.manifest.message)"))
            }
        }
    }
}

struct Ls: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the files of a version.",
                                                    discussion: "Exit codes: 0 ok; 2 unknown ref or subpath.")
    @Argument(help: "A version: NAME@vN, NAME@vN#SPLIT, NAME (latest), or an id prefix.") var ref: String
    @Argument(help: "Only files under this path.") var subpath: String?
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let (_, files) = try store.open().listFiles(ref, subpath: subpath)
            if output.json {
                sayJSON(.array(files.map { f in
                    var o: [String: JSON] = ["path": .string(f.path), "kind": .string(f.kind.rawValue), "mode": .int(Int64(f.mode)), "size": .int(f.size)]
                    if let id = f.id { o["id"] = .string(id.hex) }
                    if let t = f.target { o["target"] = .string(t) }
                    return .object(o)
                }))
                return
            }
            for f in files {
                let what = f.kind == .symlink ? "-> \(f.target ?? "")" : (f.id?.short ?? "")
                say("\(String(f.mode, radix: 8))  \(pad(String(f.size), 12))  \(pad(what, 12))  \(escaped(f.path))")
            }
        }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a version's manifest (mlv show REF) or a run (mlv show run RUN).",
        discussion: "Exit codes: 0 ok; 2 unknown ref or run; 4 a damaged manifest or run, or a missing blob; 5 an ambiguous prefix.",
        subcommands: [ShowVersion.self, ShowRun.self], defaultSubcommand: ShowVersion.self)
}

struct ShowVersion: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "Show a version's manifest (the default: mlv show REF).",
        discussion: "A REF that names no version but a run (its id, prefix or name) shows the run. Exit codes: 0 ok; 2 unknown ref; 4 damaged manifest.")
    @Argument(help: "A version: NAME@vN, NAME (latest), NAME@STAGE, model:NAME@vN, or an id prefix.") var ref: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func showModel(_ repo: Repository, _ r: Resolved) throws {
        let m = try repo.modelManifest(r.id)
        let state = try repo.registryHead(model: r.name)?.event.state ?? RegistryState()
        let stages = state.stages(of: r.version)
        let aliases = state.aliases.filter { $0.value.version == r.version }.keys.sorted()
        let taints = try repo.taintMarks(of: r.id)
        if output.json {
            sayJSON(.object(["ref": r.json, "manifest": m.json, "stages": .array(stages.map { .string($0) }),
                             "aliases": .array(aliases.map { .string($0) }), "tainted": taintJSON(taints)]))
            return
        }
        say("model \(r.name)@v\(r.version)")
        say("id       \(r.id.hex)")
        say("root     \(m.root.hex)")
        say("files    \(m.files), \(humanBytes(m.bytes))")
        say("created  \(m.created) by \(m.author)")
        say("source   \(m.source)")
        if !m.message.isEmpty { say("message  \(m.message)") }
        if !stages.isEmpty { say("stage    \(stages.joined(separator: ", "))") }
        if !aliases.isEmpty { say("aliases  \(aliases.joined(separator: ", "))") }
        sayTaints(taints)
        for input in m.inputs {
            say("input    \(input.role): \(input.ref ?? input.id.short) (\(input.id.short)\(input.split.map { ", split \($0)" } ?? ""))")
        }
        for (k, v) in m.meta.sorted(by: { $0.key < $1.key }) { say("meta     \(k)=\(v)") }
        say("")
        say(m.json.prettyString())
    }

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            let r: Resolved
            do { r = try repo.resolve(ref) } catch MLVError.unknownRef(let text, let suggestions) {
                guard let run = try? repo.findRun(ref) else { throw MLVError.unknownRef(text, suggestions: suggestions) }
                return try show(try repo.runDetails(run), json: output.json)
            }
            if r.kind == "model" {
                try showModel(repo, r)
                return
            }
            let m = try repo.datasetManifest(r.id)
            let taints = try repo.taintMarks(of: r.id)
            if output.json {
                sayJSON(.object(["ref": r.json, "manifest": m.json, "tainted": taintJSON(taints)]))
                return
            }
            say("dataset \(r.name)@v\(r.version)")
            say("id       \(r.id.hex)")
            say("root     \(m.root.hex)")
            say("files    \(m.files), \(humanBytes(m.bytes))")
            say("created  \(m.created) by \(m.author)")
            say("source   \(m.source)")
            if !m.message.isEmpty { say("message  \(m.message)") }
            sayTaints(taints)
            for input in m.inputs {
                say("input    \(input.role): \(input.ref ?? input.id.short) (\(input.id.short)\(input.split.map { ", split \($0)" } ?? ""))")
            }
            for (k, s) in m.splits.sorted(by: { $0.key < $1.key }) {
                say("split    \(k): \(s.path)/ \(s.files) files, \(humanBytes(s.bytes)), tree \(s.tree.short)")
            }
            for (k, v) in m.meta.sorted(by: { $0.key < $1.key }) { say("meta     \(k)=\(v)") }
            say("")
            say(m.json.prettyString())
        }
    }
}

func changesJSON(_ changes: [Change]) -> JSON {
    .array(changes.map { c in
        var o: [String: JSON] = ["change": .string(c.kind.rawValue), "path": .string(c.path)]
        if let s = c.oldSize { o["oldSize"] = .int(s) }
        if let s = c.newSize { o["newSize"] = .int(s) }
        return .object(o)
    })
}

func renderChanges(_ changes: [Change]) {
    for c in changes {
        let mark = c.kind == .added ? "A" : c.kind == .deleted ? "D" : "M"
        let size: String
        switch c.kind {
        case .added: size = humanBytes(c.newSize ?? 0)
        case .deleted: size = humanBytes(c.oldSize ?? 0)
        case .modified: size = "\(humanBytes(c.oldSize ?? 0)) -> \(humanBytes(c.newSize ?? 0))"
        }
        say("\(mark)  \(escaped(c.path))  (\(size))")
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Compare a directory with a dataset's latest version, or this store with a remote.",
        discussion: """
            Reads only files whose size, times or inode changed since the last add or status. With             --remote, NAME is a remote (default: origin) and the refs that are here only, there only,             or different are listed; nothing is transferred but the refs. Exit codes: 0 ok; 1 changes             found with --exit-code, or the remote could not be reached; 2 unknown dataset, path or remote.
            """)
    @Argument(help: "Dataset name (with --remote: remote name).") var name: String?
    @Argument(help: "Directory to compare (default: where the latest version was added from).") var path: String?
    @Flag(help: "Compare refs with a remote instead.") var remote = false
    @Flag(help: "Exit with 1 when there are changes.") var exitCode = false
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func validate() throws {
        if !remote && name == nil { throw ValidationError("missing the dataset name") }
        if remote && path != nil { throw ValidationError("--remote takes at most a remote name") }
    }

    func run() throws {
        var changed = false
        try MLVCommands.run {
            if remote {
                let repo = try store.open()
                let (settings, target) = try repo.remote(named: name)
                let report = try repo.remoteStatus(target, remoteName: settings.name)
                changed = !report.isEmpty
                if output.json {
                    sayJSON(.object(["remote": .string(settings.name), "clean": .bool(!changed),
                                     "refs": .array(report.map { .object(["ref": .string($0.ref), "state": .string($0.state.rawValue)]) })]))
                    return
                }
                if report.isEmpty { say("in sync with \(settings.name)"); return }
                say(table([["REF", "STATE"]] + report.map { [$0.ref, $0.state.rawValue] }))
                return
            }
            let name = name!
            let report = try store.open().status(dataset: name, path: path)
            changed = !report.changes.isEmpty
            if output.json {
                sayJSON(.object(["name": .string(name), "version": .int(Int64(report.version)), "path": .string(report.path),
                                 "clean": .bool(!changed), "changes": changesJSON(report.changes)]))
                return
            }
            if report.changes.isEmpty {
                say("\(name): clean (matches \(name)@v\(report.version))")
            } else {
                say("\(name): \(report.changes.count) changes against \(name)@v\(report.version) in \(report.path)")
                renderChanges(report.changes)
            }
        }
        if changed && exitCode { throw ExitCode(MLVExit.checkFailed) }
    }
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "File-level differences between two versions (mlv diff A B), or between two runs (mlv diff run A B).",
        discussion: "Exit codes: 0 ok; 2 unknown ref or run; 4 a damaged run, environment or code snapshot; 5 an ambiguous prefix.",
        subcommands: [DiffVersions.self, DiffRun.self], defaultSubcommand: DiffVersions.self)
}

struct DiffVersions: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "versions", abstract: "File-level differences between two versions, with sizes (the default: mlv diff A B).",
        discussion: "When neither ref names a version but both name runs, the runs are compared as by 'mlv diff run'. Exit codes: 0 ok; 2 unknown ref.")
    @Argument(help: "The older version.") var from: String
    @Argument(help: "The newer version.") var to: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            let a: Resolved, b: Resolved, changes: [Change]
            do { (a, b, changes) = try repo.diff(from, to) } catch MLVError.unknownRef(let text, let suggestions) {
                guard (try? repo.resolve(from)) == nil, (try? repo.resolve(to)) == nil,
                      let runs = try? repo.diffRuns(from, to) else { throw MLVError.unknownRef(text, suggestions: suggestions) }
                return try showRunDiff(runs, json: output.json)
            }
            if output.json {
                sayJSON(.object(["from": a.json, "to": b.json, "changes": changesJSON(changes)]))
                return
            }
            if changes.isEmpty { say("\(a.display) and \(b.display) have the same files"); return }
            renderChanges(changes)
            let added = changes.filter { $0.kind == .added }.count, deleted = changes.filter { $0.kind == .deleted }.count
            say("\(added) added, \(changes.count - added - deleted) modified, \(deleted) deleted")
        }
    }
}

/// The taints reaching a version, as JSON.
func taintJSON(_ marks: [TaintMark]) -> JSON {
    .array(marks.map { t in .object([
        "ref": .string(t.taint.ref), "id": .string(t.taint.id.hex), "reason": .string(t.taint.reason),
        "by": .string(t.taint.by), "since": .string(t.taint.since), "path": .array(t.path.map { .string($0) }),
    ]) })
}

/// `tainted  via mnist-raw@v3: labels shifted (by ..., since ...)`, one line per taint.
func sayTaints(_ marks: [TaintMark]) {
    for t in marks {
        say("tainted  " + (t.isDirect ? "" : "via \(t.taint.ref): ") + "\(t.taint.reason) (by \(t.taint.by), since \(t.taint.since))")
        if !t.isDirect { say("         path: " + t.path.joined(separator: " -> ")) }
    }
}
