import ArgumentParser
import MLVBasics
import MLVKit
import MLVModel
import MLVStore

struct Checkout: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkout",
        abstract: "Write the files of a version into a directory, verified.",
        discussion: """
            Every file is written to a staging directory and checked against its SHA-256 before the \
            target is touched; a damaged object aborts the checkout with the target unchanged. \
            Objects not stored here (after 'mlv pull --lazy' or 'mlv clone --lazy') are fetched from \
            the configured remotes (origin first) and verified. Exit codes: 0 ok; 1 a remote could not \
            be reached; 2 unknown ref or subpath; 3 files in the way (use --force); 4 damaged object.
            """)
    @Argument(help: "A version: NAME@vN, NAME@vN#SPLIT, NAME (latest), or an id prefix.") var ref: String
    @Argument(help: "Only this subdirectory of the version.") var subpath: String?
    @Option(name: .customLong("to"), help: ArgumentHelp("Directory to write into (created if missing).", valueName: "DIR"))
    var target: String
    @Flag(help: "Overwrite existing files that differ.") var force = false
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let progress = terminalProgress("writing")
            let result = try store.open().checkout(ref, subpath: subpath, to: target, force: force, progress: progress)
            endProgress(progress)
            if output.json {
                sayJSON(.object(["target": .string(result.target), "files": .int(Int64(result.files)), "bytes": .int(result.bytes)]))
            } else {
                say("checked out \(ref) into \(result.target): \(result.files) files, \(humanBytes(result.bytes))")
            }
        }
    }
}

struct Hash: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract: "Print a file's blob id (the same hex sha256sum prints).",
        discussion: "Needs no store. Exit codes: 0 ok; 2 no such file; 5 unreadable.")
    @Argument(help: "Files to hash.") var files: [String]
    @OptionGroup var output: JSONOption

    func validate() throws {
        if files.isEmpty { throw ValidationError("name at least one file") }
    }

    func run() throws {
        try MLVCommands.run {
            var results: [JSON] = []
            for f in files {
                let id = try Repository.hashFile(f)
                if output.json { results.append(.object(["path": .string(f), "id": .string(id.hex)])) } else { say("\(id.hex)  \(f)") }
            }
            if output.json { sayJSON(.array(results)) }
        }
    }
}

struct Chunks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chunks",
        abstract: "Plumbing: print how FastCDC cuts a file: offset, length, chunk id.",
        discussion: "Uses the store's chunk sizes when run inside one, else the defaults, unless given. Exit codes: 0 ok; 2 no such file; 5 bad sizes.")
    @Argument(help: "File to chunk.") var file: String
    @Option(help: "Minimum chunk size.") var min: Int?
    @Option(help: "Average chunk size (a power of two).") var avg: Int?
    @Option(help: "Maximum chunk size.") var max: Int?
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        try MLVCommands.run {
            let base = (try? store.open())?.config.chunker ?? .default
            let params = ChunkerParameters(min: min ?? base.min, avg: avg ?? base.avg, max: max ?? base.max)
            let chunker: FastCDC
            do { chunker = try FastCDC(params) } catch { throw MLVError.invalidArgument("\(error)") }
            guard FS.exists(file) else { throw MLVError.pathNotFound(file) }
            let mapped: MappedFile
            do { mapped = try MappedFile(path: file) } catch let e as FileSystemError { throw MLVError.unreadable(path: file, cause: e) }
            var rows: [JSON] = []
            chunker.forEachChunk(mapped.bytes) { offset, length in
                let id = SHA256.hash(UnsafeRawBufferPointer(rebasing: mapped.bytes[offset..<(offset + length)]))
                if output.json {
                    rows.append(.object(["offset": .int(Int64(offset)), "length": .int(Int64(length)), "id": .string(id.hex)]))
                } else {
                    say("\(offset) \(length) \(id.hex)")
                }
            }
            if output.json { sayJSON(.array(rows)) }
        }
    }
}

struct Fsck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract: "Verify every ref, manifest, tree and blob; name anything damaged.",
        discussion: """
            A pack index that fails its checks stops the store from opening. --repair copies every \
            record of that pack that still verifies into a new pack, then moves the damaged index and \
            pack into .mlv/damaged/ (nothing is deleted), and checks the store as usual. It does the \
            same for a pack with a sound index and a damaged record, naming the objects lost; \
            'mlv pull' then fetches them again from a remote that has them. \
            Exit codes: 0 clean (warnings allowed); 1 damage found; 2 no store; 4 the store does not \
            open (a damaged index without --repair, or a damaged config).
            """)
    @Flag(help: "Also re-read and re-hash every chunk and check every pack's checksum.") var full = false
    @Flag(help: "Salvage the sound records of packs whose index or records are damaged, then move the damaged files into .mlv/damaged/.")
    var repair = false
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        var clean = true
        try MLVCommands.run {
            let repo = try store.open(tolerateDamage: repair)
            let salvaged = repair ? try repo.repair() : []
            // After a repair, open strictly again: every index left must pass its checks.
            let report = try (repair ? Repository.open(searchingFrom: repo.root) : repo).fsck(full: full)
            clean = report.isClean
            if output.json {
                sayJSON(.object([
                    "clean": .bool(report.isClean), "refs": .int(Int64(report.refs)), "manifests": .int(Int64(report.manifests)),
                    "trees": .int(Int64(report.trees)), "blobs": .int(Int64(report.blobs)),
                    "problems": .array(report.problems.map { .object(["severity": .string($0.severity.rawValue), "subject": .string($0.subject), "message": .string($0.message)]) }),
                    "repaired": .array(salvaged.map { p in .object([
                        "pack": .string(p.name), "reason": .string(p.reason), "salvaged": .int(Int64(p.recordsSalvaged)),
                        "lost": .int(Int64(p.recordsLost)), "truncated": .bool(p.truncated), "movedTo": .array(p.movedTo.map { .string($0) }),
                        "lostObjects": .array(p.lostObjects.map { .string($0.hex) }),
                    ]) }),
                ]))
                return
            }
            for p in salvaged {
                say("repaired pack-\(p.name): \(p.reason); salvaged \(p.recordsSalvaged) records into a new pack, " +
                    "\(p.recordsLost) failed their checks\(p.truncated ? ", the pack is cut short" : ""); moved \(p.movedTo.joined(separator: " and "))")
                for id in p.lostObjects { say("lost \(id.hex): its only copy here was damaged") }
            }
            for p in report.problems { say(p.description) }
            // Damaged or missing objects (named by id): say how to get them back.
            if report.problems.contains(where: { $0.severity == .error && ObjectID(hex: $0.subject) != nil }) {
                say(repair
                    ? "hint: 'mlv pull' fetches missing objects again from a remote that has them"
                    : "hint: 'mlv fsck --repair' moves damaged packs aside keeping every sound record; 'mlv pull' then fetches missing objects from a remote that has them")
            }
            let verified = full ? ", \(report.chunksVerified) blobs re-hashed" : ""
            say("checked \(report.refs) refs, \(report.manifests) manifests, \(report.trees) trees, \(report.blobs) blobs\(verified): " +
                (report.isClean ? "no damage" : "\(report.problems.filter { $0.severity == .error }.count) problems"))
        }
        if !clean { throw ExitCode(MLVExit.checkFailed) }
    }
}

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove objects that no ref reaches, after a grace period.",
        discussion: "Refuses to delete anything when the store has damage. Packs past the grace period that hold run log chunks 'mlv run' stored raw for want of CPU time are rewritten with those chunks compressed. Exit codes: 0 ok; 3 store busy; 4 damage found.")
    @Flag(help: "Report what would be removed, remove nothing.") var dryRun = false
    @Option(help: ArgumentHelp("Keep anything written more recently than this: 0, 30m, 12h, 3d, 2w.", valueName: "AGE"))
    var grace = "2w"
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func validate() throws {
        if parseDuration(grace) == nil { throw ValidationError("--grace '\(grace)': expected a number with s, m, h, d or w") }
    }

    func run() throws {
        try MLVCommands.run {
            let r = try store.open().gc(graceSeconds: parseDuration(grace)!, dryRun: dryRun)
            if output.json {
                sayJSON(.object([
                    "dryRun": .bool(r.dryRun), "reachable": .int(Int64(r.reachable)), "objectsRemoved": .int(Int64(r.objectsRemoved)),
                    "bytesFreed": .int(r.bytesFreed), "packsRemoved": .int(Int64(r.packsRemoved.count)),
                    "packsRewritten": .int(Int64(r.packsRewritten.count)), "packsMerged": .int(Int64(r.packsMerged.count)), "keptForGrace": .int(Int64(r.keptForGrace)),
                    "temporaryFilesRemoved": .int(Int64(r.temporaryFilesRemoved)),
                    "chunksCompressed": .int(Int64(r.chunksCompressed)), "bytesSavedByCompression": .int(r.bytesSavedByCompression),
                ]))
                return
            }
            let verb = r.dryRun ? "would remove" : "removed"
            say("\(verb) \(r.objectsRemoved) objects (\(humanBytes(r.bytesFreed))) from \(r.packsRemoved.count + r.packsRewritten.count) packs, \(r.temporaryFilesRemoved) leftover files; \(r.reachable) objects reachable")
            if !r.packsMerged.isEmpty { say("\(r.dryRun ? "would merge" : "merged") \(r.packsMerged.count) small packs into one") }
            if r.chunksCompressed > 0 {
                say(r.dryRun ? "would compress \(r.chunksCompressed) run log chunks stored raw while their run went on"
                    : "compressed \(r.chunksCompressed) run log chunks stored raw while their run went on (saved \(humanBytes(r.bytesSavedByCompression)))")
            }
            if r.keptForGrace > 0 { say("\(r.keptForGrace) packs with unreachable objects are younger than --grace \(grace) and were kept") }
        }
    }
}

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show or set the store's configuration.",
        discussion: "Settable: identity (who you are in manifests; MLV_IDENTITY overrides it). Exit codes: 0 ok; 5 unknown key.")
    @Argument(help: "A key to set: identity.") var key: String?
    @Argument(help: "The value (empty to unset).") var value: String?
    @OptionGroup var store: StoreOptions

    func run() throws {
        try MLVCommands.run {
            let repo = try store.open()
            guard let key else {
                say("format   \(repo.config.format)")
                say("chunker  min \(repo.config.chunker.min), avg \(repo.config.chunker.avg), max \(repo.config.chunker.max)")
                say("identity \(repo.identity)")
                return
            }
            guard key == "identity" else { throw MLVError.invalidArgument("unknown config key '\(key)' (settable: identity)") }
            guard let value else { say(repo.identity); return }
            try repo.setIdentity(value.isEmpty ? nil : value)
        }
    }
}

struct Unlock: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlock",
        abstract: "Remove lock files left behind by mlv processes that were killed.",
        discussion: """
            A ref or the stage configuration is changed under a lock file that names its owner's \
            pid, host and start time. A process killed while holding one leaves it behind, and later \
            changes are refused naming that owner. unlock removes each lock whose owner no longer \
            runs on this host, and refuses (naming pid, host and age) while the owner lives. A lock \
            taken on another host cannot be checked from here: --force removes it, with a warning. \
            Exit codes: 0 every lock found was removed (or there were none); 2 no store; 5 a lock was kept.
            """)
    @Flag(help: "Also remove locks from other hosts, or naming no owner, whose process cannot be checked.") var force = false
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: JSONOption

    func run() throws {
        var kept = false
        try MLVCommands.run {
            let reports = try store.open().unlock(force: force)
            kept = reports.contains { !$0.wasRemoved }
            if output.json {
                sayJSON(.array(reports.map { r in
                    var o: [String: JSON] = ["path": .string(r.path), "outcome": .string(r.outcome.rawValue)]
                    if let owner = r.owner {
                        o["pid"] = .int(Int64(owner.pid))
                        o["host"] = .string(owner.host)
                        o["since"] = .int(owner.since)
                    }
                    return .object(o)
                }))
                return
            }
            if reports.isEmpty { say("no lock files") }
            for r in reports {
                let who = r.owner.map { "held by \($0)" } ?? "naming no owner"
                switch r.outcome {
                case .removed:
                    say("removed \(r.path) (\(who); that process is not running)")
                case .forced:
                    printError("warning: removed \(r.path) (\(who)) with --force; its process could not be checked from this host")
                    say("removed \(r.path)")
                case .ownerAlive:
                    printError("error: kept \(r.path): \(who), and that process is still running")
                case .cannotCheck:
                    printError("error: kept \(r.path): \(who), which cannot be checked from this host; use --force if it is gone")
                }
            }
        }
        if kept { throw ExitCode(MLVExit.refused) }
    }
}
