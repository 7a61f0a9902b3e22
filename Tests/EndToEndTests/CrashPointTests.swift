import MLVBasics
import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The status `ChildProcess` reports for a process killed by SIGKILL.
let killedBySIGKILL: Int32 = 128 + SIGKILL

/// A store where every kind of write has something to do, built once and copied for
/// each test: dataset `d` v1 (from `one`; `two` is its next content), model `digits` v1
/// and v2 with v1 in production, and garbage for gc (dataset `junk`, whose refs are
/// gone, and dataset `x`, whose pack `y` still half uses).
enum CrashStore {
    static let template: Result<String, Error> = Result {
        let dir = try Scenario.makeDirectory(prefix: "mlv-crash-template", inMemory: true)
        let env = ["MLV_IDENTITY": "crash@test"]
        func mlv(_ arguments: String...) throws {
            let r = try MLVBinary.run(arguments, in: dir, environment: env)
            guard r.status == 0 else { throw PackFailure("set-up failed: \(r)") }
        }
        try mlv("init")
        try Scenario.write(["a.bin": .random(seed: 1, count: 300_000), "x.txt": "one\n"], under: dir + "/one")
        try Scenario.write(["a.bin": .random(seed: 2, count: 300_000), "x.txt": "two\n", "sub/y.txt": "y\n"], under: dir + "/two")
        try mlv("add", "dataset", "d", "one")
        for v in 1...2 {
            try Scenario.write(.random(seed: UInt64(10 + v), count: 5000), at: dir + "/model-v\(v).bin")
            try Scenario.write(.random(seed: UInt64(10 + v), count: 5000), at: dir + "/out/model.bin")
            try mlv("add", "model", "digits", "out/model.bin", "-m", "v\(v)")
        }
        try mlv("promote", "model", "digits@v1", "--to", "production", "-m", "first")
        try Scenario.write(["b.bin": .random(seed: 5, count: 200_000)], under: dir + "/g1")
        try Scenario.write(["c.bin": .random(seed: 6, count: 200_000)], under: dir + "/g2")
        try mlv("add", "dataset", "junk", "g1")
        try mlv("add", "dataset", "x", "g2")
        try mlv("add", "dataset", "y", "g2")
        Scenario.removeTree(dir + "/.mlv/refs/dataset/junk")
        Scenario.removeTree(dir + "/.mlv/refs/dataset/x")
        return dir
    }

    struct PackFailure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// A fresh session holding a copy of the template.
    static func session() throws -> Session {
        // SIGKILL leaves the page cache intact, so tmpfs shows the same thing disk would, sooner.
        let s = try Session(identity: "crash@test", inMemory: true)
        let r = try runProgram("/bin/cp", ["-a", try template.get() + "/.", s.directory], in: s.directory)
        guard r.status == 0 else { throw PackFailure("cp failed: \(r)") }
        return s
    }
}

/// Every ref file under the store with its content, and lock files left behind.
func refFiles(_ s: Session) throws -> [String: String] {
    var out: [String: String] = [:]
    func walk(_ dir: String, _ rel: String) throws {
        for name in try Scenario.names(in: dir) {
            let path = dir + "/" + name
            if FS.isDirectory(path) {
                try walk(path, rel + name + "/")
            } else if !name.hasSuffix(".lock") && !name.hasPrefix(".") {
                out[rel + name] = String(decoding: try Scenario.read(path), as: UTF8.self)
            }
        }
    }
    try walk(s.path(".mlv/refs"), "")
    return out
}

func lockFilesLeft(_ s: Session) throws -> [String] {
    var found: [String] = []
    func walk(_ dir: String) throws {
        for name in try Scenario.names(in: dir) {
            let path = dir + "/" + name
            if FS.isDirectory(path) { try walk(path) } else if name.hasSuffix(".lock") { found.append(path) }
        }
    }
    try walk(s.path(".mlv/refs"))
    if FS.exists(s.path(".mlv/stages.lock")) { found.append(s.path(".mlv/stages.lock")) }
    return found
}

/// A ref file holds one object id: 64 lowercase hex digits and a newline, nothing else.
func isWholeRef(_ content: String) -> Bool {
    let u = Array(content.utf8)
    return u.count == 65 && u[64] == 10 && u[0..<64].allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
}

@Suite("crash points: SIGKILL at each named point loses nothing")
struct CrashPointTests {
    enum Operation: String, Sendable {
        case add, promote, stage, gc

        var arguments: [String] {
            switch self {
            case .add: return ["add", "dataset", "d", "two"]
            case .promote: return ["promote", "model", "digits@v2", "--to", "production", "-m", "second"]
            case .stage: return ["stage", "add", "canary", "--single"]
            case .gc: return ["gc", "--grace", "0"]
            }
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var point: String
        var operation: Operation
        var testDescription: String { "\(operation.rawValue) killed at \(point)" }
    }

    static let cases: [Case] =
        ["pack.data-synced", "pack.renamed", "pack.index-written", "pack.before-index-rename", "pack.index-renamed",
         "pack.committed", "add.manifest-written", "add.committed", "ref.version.before-link", "ref.version.after-link",
         "add.version-created"].map { Case(point: $0, operation: .add) }
        + ["pack.index-written", "pack.committed", "registry.event-committed", "ref.head.before-rename",
           "ref.head.after-rename"].map { Case(point: $0, operation: .promote) }
        + ["stages.before-rename", "stages.after-rename"].map { Case(point: $0, operation: .stage) }
        + ["pack.committed", "gc.repacked", "gc.index-deleted", "gc.pack-deleted", "gc.pack-deleted:2"].map { Case(point: $0, operation: .gc) }

    @Test(arguments: cases)
    func killedAt(_ c: Case) throws {
        let s = try CrashStore.session()
        let before = try refFiles(s)
        let crashed = try MLVBinary.run(c.operation.arguments, in: s.directory,
                                        environment: s.environment.merging(["MLV_CRASH_AT": c.point]) { $1 })
        #expect(crashed.status == killedBySIGKILL, "the armed point was not reached: \(crashed)")

        // A lock left by the killed process: changes that need it are refused naming its
        // owner, and `mlv unlock` removes it because that process is gone.
        let locks = try lockFilesLeft(s)
        if !locks.isEmpty {
            let probe = c.operation == .stage ? ["stage", "add", "probe"] : ["alias", "set", "digits@v1", "probe"]
            let refused = try MLVBinary.run(probe, in: s.directory, environment: s.environment)
            #expect(refused.status == 3, "\(refused)")
            #expect(refused.stderr.contains("pid \(crashed.pid)") && refused.stderr.contains("mlv unlock"), "\(refused)")
            let unlock = try s.mlv("unlock")
            #expect(unlock.stdout.contains("removed") && unlock.stdout.contains("not running"), "\(unlock)")
            #expect(try lockFilesLeft(s).isEmpty)
        }
        #expect(locks.count <= 1, "\(locks)")
        #expect(c.operation == .promote || c.operation == .stage || locks.isEmpty, "\(locks)")

        // Every ref is wholly old or wholly new (and fsck, below, finds each one sound).
        let after = try refFiles(s)
        for (path, content) in after {
            #expect(isWholeRef(content), "\(path) holds \(content.debugDescription)")
            if let old = before[path], path != "model/digits/head" {
                #expect(content == old, "\(path) changed")
            }
        }
        #expect(Set(before.keys).isSubset(of: Set(after.keys)), "a ref disappeared")

        // fsck is clean and committed data is intact: every blob re-hashed against the ids
        // the versions name.
        try s.mlv("fsck", "--full")
        if c.operation == .gc {
            try s.mlv("checkout", "y", "--to", "out-y")
            #expect(try Scenario.snapshot(s.path("out-y")) == Scenario.snapshot(s.path("g2")))
        }

        // The operation works when run again, and then everything is as if it never crashed.
        let again = try MLVBinary.run(c.operation.arguments, in: s.directory, environment: s.environment)
        switch c.operation {
        case .add:
            #expect(again.status == 0, "\(again)")
            #expect(try s.json("log", "dataset", "d").array?.count == 2, "the crash left no extra version")
            try s.mlv("checkout", "d", "--to", "out-d2")
            #expect(try Scenario.snapshot(s.path("out-d2")) == Scenario.snapshot(s.path("two")))
        case .promote:
            // Done already when the head had moved before the kill.
            #expect(again.status == 0 || (again.status == 5 && again.stderr.contains("already holds")), "\(again)")
            try s.mlv("checkout", "digits@production", "--to", "out-prod")
            #expect(try Scenario.read(s.path("out-prod/model.bin")) == Scenario.read(s.path("model-v2.bin")))
            try s.mlv("audit", "--verify")
            #expect(try s.json("audit", "digits").array?.count == 2, "one event per successful promotion")
        case .stage:
            #expect(again.status == 0 || (again.status == 5 && again.stderr.contains("already exists")), "\(again)")
            #expect(try s.json("stage", "list").array?.count == 4)
        case .gc:
            #expect(again.status == 0, "\(again)")
            let dry = try s.json("gc", "--grace", "0", "--dry-run")
            #expect(dry["objectsRemoved"]?.int == 0, "gc finished its work: \(dry)")
        }
        // The next add works.
        try s.mlv("add", "dataset", "next", "one")
        try s.mlv("fsck")
    }

    /// Arming a name no code reaches changes nothing: the crash points are inert unless armed.
    @Test func anUnknownPointIsInert() throws {
        let s = try CrashStore.session()
        let r = try MLVBinary.run(["add", "dataset", "d", "two"], in: s.directory,
                                  environment: s.environment.merging(["MLV_CRASH_AT": "no.such.point"]) { $1 })
        #expect(r.status == 0, "\(r)")
    }
}

@Suite("mlv unlock")
struct UnlockEndToEndTests {
    /// A lock whose owner lives is kept (exit 5, naming pid, host and age) until that
    /// process dies; a lock from another host needs --force, which warns.
    @Test func removesOnlyLocksWhoseOwnerIsGone() throws {
        let s = try CrashStore.session()
        try s.mlv("unlock")
        let sleeper = try ChildProcess(executable: "/bin/sleep", arguments: ["30"], directory: s.directory)
        let lock = s.path(".mlv/refs/model/digits/head.lock")
        try Scenario.write(.text("\(sleeper.pid) \(hostName()) \(Int(time(nil)) + 1)\n"), at: lock)

        let kept = try s.run(["unlock"], status: 5)
        #expect(kept.stderr.contains("pid \(sleeper.pid) on \(hostName())") && kept.stderr.contains("still running"), "\(kept)")
        #expect(kept.stderr.contains("s ago"), "\(kept)")
        #expect(FS.exists(lock))

        kill(sleeper.pid, SIGKILL)
        _ = sleeper.wait()
        let removed = try s.mlv("unlock")
        #expect(removed.stdout.contains("removed .mlv/refs/model/digits/head.lock"), "\(removed)")
        try s.mlv("promote", "model", "digits@v2", "--to", "production", "-m", "x")

        try Scenario.write(.text("77 build-host-2 \(Int(time(nil)))\n"), at: lock)
        let foreign = try s.run(["unlock"], status: 5)
        #expect(foreign.stderr.contains("build-host-2") && foreign.stderr.contains("--force"), "\(foreign)")
        let forced = try MLVBinary.run(["unlock", "--force"], in: s.directory, environment: s.environment)
        #expect(forced.status == 0 && forced.stderr.contains("warning:"), "\(forced)")
        #expect(!FS.exists(lock))
        #expect(try s.mlv("unlock").stdout == "no lock files\n")
    }
}

@Suite("mlv fsck --repair")
struct RepairEndToEndTests {
    /// A damaged index stops every command (exit 4, naming it); `fsck --repair` salvages its
    /// pack, moves the damaged files into .mlv/damaged/, and the store works again.
    @Test func aDamagedIndexIsSalvagedAndMovedAside() throws {
        let s = try CrashStore.session()
        let packs = s.path(".mlv/packs")
        let index = try indexHoldingManifest(of: "dataset/d/versions/1", in: s)
        try patchFile(packs + "/" + index, at: 20) { $0 ^ 0xFF }
        let broken = try s.run(["checkout", "d@v1", "--to", "repaired"], status: 4)
        #expect(broken.stderr.contains(index), "\(broken)")
        try s.run(["fsck"], status: 4)

        let repaired = try s.mlv("fsck", "--repair")
        #expect(repaired.stdout.contains("repaired pack-") && repaired.stdout.contains(".mlv/damaged/" + index), "\(repaired)")
        #expect(FS.exists(s.path(".mlv/damaged/" + index)))
        try s.mlv("fsck", "--full")
        try s.mlv("checkout", "d@v1", "--to", "repaired")
        let same = try Scenario.snapshot(s.path("repaired")) == Scenario.snapshot(s.path("one"))
        #expect(same)
    }

    /// Killed after moving the damaged files aside and before salvaging them: the store
    /// opens, fsck names what is missing, and the next repair salvages from .mlv/damaged/.
    @Test func aRepairKilledMidwayIsFinishedByTheNext() throws {
        let s = try CrashStore.session()
        let packs = s.path(".mlv/packs")
        let index = try indexHoldingManifest(of: "dataset/d/versions/1", in: s)
        try patchFile(packs + "/" + index, at: 20) { $0 ^ 0xFF }
        let killed = try MLVBinary.run(["fsck", "--repair"], in: s.directory,
                                       environment: s.environment.merging(["MLV_CRASH_AT": "repair.moved"]) { $1 })
        #expect(killed.status == killedBySIGKILL, "\(killed)")
        #expect(FS.exists(s.path(".mlv/damaged/" + index)))
        try s.run(["fsck"], status: 1)
        try s.run(["gc", "--grace", "0"], status: 4)  // refuses: the store has damage
        let again = try s.mlv("fsck", "--repair")
        #expect(again.stdout.contains("earlier repair"), "\(again)")
        try s.mlv("fsck", "--full")
        try s.mlv("checkout", "d@v1", "--to", "repaired")
        let same = try Scenario.snapshot(s.path("repaired")) == Scenario.snapshot(s.path("one"))
        #expect(same)
    }

    /// A bit flip in a chunk behind a sound index: `fsck --full` names the object and says
    /// how to recover; a repair killed after committing the sound records elsewhere is
    /// finished by the next, which moves the pack aside and names the lost object; a pull
    /// from a remote with a good copy brings it back.
    @Test func aDamagedRecordIsMovedAsideAndAPullHealsIt() throws {
        let s = try CrashStore.session()
        try s.mlv("remote", "add", "origin", s.path("shared"))
        try s.mlv("push")
        let index = try indexHoldingManifest(of: "dataset/d/versions/1", in: s)
        let repo = try Repository.open(searchingFrom: s.directory)
        let entries = try #require(repo.objects.packIndexes.first { $0.indexPath.hasSuffix("/" + index) }).entries
        let victim = try #require(entries.first { $0.kind == .chunk && $0.storedLength > 1000 })
        let pack = s.path(".mlv/packs/" + index.dropLast(4) + ".pack")
        try patchFile(pack, at: victim.offset + 48 + 500) { ~$0 }

        let found = try s.run(["fsck", "--full"], status: 1)
        #expect(found.stdout.contains(victim.id.hex) && found.stdout.contains("mlv fsck --repair"), "\(found)")
        let killed = try MLVBinary.run(["fsck", "--repair"], in: s.directory,
                                       environment: s.environment.merging(["MLV_CRASH_AT": "repair.records-copied"]) { $1 })
        #expect(killed.status == killedBySIGKILL, "\(killed)")
        #expect(FS.exists(pack), "killed before the move")
        let repaired = try s.run(["fsck", "--repair"], status: 1)
        #expect(repaired.stdout.contains("lost \(victim.id.hex)") && repaired.stdout.contains("'mlv pull'"), "\(repaired)")
        #expect(!FS.exists(pack) && FS.exists(s.path(".mlv/damaged/" + FS.baseName(of: pack))))
        try s.mlv("pull")
        try s.mlv("fsck", "--full")
        try s.mlv("checkout", "d@v1", "--to", "healed")
        let same = try Scenario.snapshot(s.path("healed")) == Scenario.snapshot(s.path("one"))
        #expect(same)
    }
}

/// The name of the pack index that lists the manifest a ref names (entries are 56 bytes
/// after a 16-byte header, each starting with the id).
func indexHoldingManifest(of ref: String, in s: Session) throws -> String {
    let hex = String(decoding: try Scenario.read(s.path(".mlv/refs/" + ref)), as: UTF8.self).prefix(64)
    let id = try #require(ObjectID(hex: hex)).bytes
    let packs = s.path(".mlv/packs")
    for name in try Scenario.names(in: packs) where name.hasSuffix(".idx") {
        let b = try Scenario.read(packs + "/" + name)
        var at = 16
        while at + 56 <= b.count - 16 {
            if Array(b[at..<(at + 32)]) == id { return name }
            at += 56
        }
    }
    throw CrashStore.PackFailure("no index lists the manifest of \(ref)")
}
