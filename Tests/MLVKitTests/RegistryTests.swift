import Dispatch
import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A store with dataset `mnist@v1` (splits train, eval) and model `digits` v1..v`versions`.
func registryRepository(versions: Int = 3) throws -> TestRepository {
    let t = try TestRepository()
    try t.write("data", ["train/a.csv": "1,2\n", "eval/b.csv": "3,4\n"])
    try t.add("mnist", "data") { $0.splits = ["train": "train", "eval": "eval"] }
    for v in 1...max(versions, 1) where versions > 0 {
        try t.write("out/model.bin", .random(seed: UInt64(v), count: 1000 + v))
        var r = AddModelRequest(name: "digits", path: t.path("out/model.bin"))
        r.from = ["train=mnist@v1#train", "eval=mnist@v1#eval"]
        r.message = "v\(v)"
        _ = try t.repository.addModel(r)
    }
    return t
}

extension MLVError {
    var isNotFound: Bool {
        switch self {
        case .notFound, .unknownRef: return true
        default: return false
        }
    }
    var isRefused: Bool {
        if case .refused = self { return true }
        return false
    }
}

@Suite("models")
struct ModelTests {
    @Test func addModelRecordsManifestInputsAndRefs() throws {
        let t = try registryRepository(versions: 1)
        let r = try t.repository.resolve("model:digits@v1")
        #expect(r.kind == "model" && r.version == 1)
        #expect(FS.exists(t.repository.storePath + "/refs/model/digits/versions/1"))
        let m = try t.repository.modelManifest(r.id)
        #expect(m.name == "digits" && m.files == 1 && m.bytes == 1001 && m.message == "v1" && m.source == "out/model.bin")
        #expect(m.inputs.map(\.role) == ["train", "eval"])
        let mnist = try t.repository.resolve("mnist@v1")
        #expect(m.inputs[0].split == "train" && m.inputs[0].id == mnist.id)
        #expect(schemaOf(try JSON.parse(try t.repository.objects.read(r.id).bytes)) == "mlv.model/1")
        // Unchanged file and inputs: no new version.
        var again = AddModelRequest(name: "digits", path: t.path("out/model.bin"))
        again.from = ["train=mnist@v1#train", "eval=mnist@v1#eval"]
        #expect(try t.repository.addModel(again).created == false)
        // The same name as a dataset: `digits@v1` is ambiguous, kinds disambiguate.
        try t.add("digits", "data")
        expectMLVError({ if case .ambiguousRef = $0 { true } else { false } }, mentions: ["model:digits@v1", "dataset:digits@v1"]) {
            try t.repository.resolve("digits@v1")
        }
        #expect(try t.repository.resolve("dataset:digits@v1").kind == "dataset")
        #expect(try t.repository.resolve(String(r.id.hex.prefix(10))).id == r.id)
    }

    @Test func modelVersionsWorkWithLsDiffCheckoutAndFsck() throws {
        let t = try registryRepository(versions: 2)
        let (_, files) = try t.repository.listFiles("digits@v2")
        #expect(files.map(\.path) == ["model.bin"])
        let (_, _, changes) = try t.repository.diff("digits@v1", "digits@v2")
        #expect(changes.map(\.kind) == [.modified])
        _ = try t.repository.checkout("digits@v1", to: t.path("co"))
        #expect(try t.read("co/model.bin") == ScenarioEntry.random(seed: 1, count: 1001).bytes)
        try t.repository.promote("digits@v1", to: "staging", message: "try")
        let report = t.repository.fsck(full: true)
        #expect(report.isClean, "\(report.problems)")
    }
}

@Suite("registry")
struct RegistryTests {
    @Test func promotingIntoProductionArchivesThePreviousHolderInOneEvent() throws {
        let t = try registryRepository()
        let repo = t.repository
        try repo.promote("digits@v1", to: "production", message: "first")
        let head = try repo.promote("digits@v2", to: "production", message: "better", actor: "bob")
        #expect(head.event.seq == 2 && head.event.action == .promote && head.event.actor == "bob")
        #expect(head.event.state.stages["production"]?.map(\.version) == [2])
        #expect(head.event.state.stages["archived"]?.map(\.version) == [1])
        #expect(try repo.resolve("digits@production").version == 2)
        #expect(try repo.resolve("digits@archived").version == 1)
        // Every event's state has at most one production holder.
        for (_, e) in try repo.history(model: "digits") {
            #expect((e.state.stages["production"] ?? []).count <= 1)
        }
        #expect(try repo.history(model: "digits").count == 2)
        // A version holds one stage at a time.
        try repo.promote("digits@v3", to: "staging", message: "candidate")
        try repo.promote("digits@v3", to: "production", message: "ship")
        let state = try #require(try repo.registryHead(model: "digits")).event.state
        #expect(state.stages["staging"] == nil)
        #expect(state.stages["archived"]?.map(\.version) == [1, 2])
    }

    @Test func approvalsArePerVersionAndStageAndSayWhatIsMissing() throws {
        let t = try registryRepository()
        let repo = t.repository
        try repo.setStage("production", approvals: 2, single: nil, distinctApprovers: true)
        try repo.approve("digits@v2", for: "production", message: "ok", actor: "alice")
        try repo.approve("digits@v1", for: "production", message: "ok", actor: "carol")
        try repo.approve("digits@v2", for: "staging", message: "ok", actor: "dave")
        let before = try t.recorded()
        // alice's approval does not count when alice promotes; carol approved another version.
        expectMLVError({ $0.isRefused }, mentions: ["needs 2 approvals", "has 0", "approved by alice", "distinct"]) {
            try repo.promote("digits@v2", to: "production", message: "go", actor: "alice")
        }
        try expectNothingRecorded(t, since: before)
        expectMLVError({ $0.isRefused }, mentions: ["already approved"]) {
            try repo.approve("digits@v2", for: "production", message: "again", actor: "alice")
        }
        try repo.approve("digits@v2", for: "production", message: "fine", actor: "bob")
        expectMLVError({ $0.isRefused }, mentions: ["has 1", "alice, bob"]) {
            try repo.promote("digits@v2", to: "production", message: "go", actor: "alice")
        }
        let head = try repo.promote("digits@v2", to: "production", message: "go", actor: "erin")
        #expect(Set(head.event.approvals.map(\.actor)) == ["alice", "bob"])
        // Used approvals are gone; the others stay pending.
        #expect(head.event.state.pending.map(\.actor).sorted() == ["carol", "dave"])
        // Approvals do not carry over to another version.
        expectMLVError({ $0.isRefused }, mentions: ["digits@v3", "nobody approved"]) {
            try repo.promote("digits@v3", to: "production", message: "go", actor: "erin")
        }
    }

    @Test func aliasesSetMoveAndRemove() throws {
        let t = try registryRepository()
        let repo = t.repository
        try repo.setAlias("digits@v2", alias: "champion")
        #expect(try repo.resolve("digits@champion").version == 2)
        try repo.setAlias("digits@v3", alias: "champion")
        #expect(try repo.resolve("digits@champion").version == 3)
        #expect(try repo.resolve("digits@latest").version == 3)
        for bad in ["latest", "production", "v2", "Bad"] {
            expectMLVError({ if case .invalidName = $0 { true } else { false } }) { try repo.setAlias("digits@v1", alias: bad) }
        }
        try repo.removeAlias(model: "digits", alias: "champion")
        expectMLVError({ $0.isNotFound }, mentions: ["digits@champion"]) { try repo.resolve("digits@champion") }
        expectMLVError({ $0.isNotFound }, mentions: ["champion"]) { try repo.removeAlias(model: "digits", alias: "champion") }
        #expect(try repo.history(model: "digits").map(\.event.action) == [.aliasRemove, .aliasSet, .aliasSet])
    }

    @Test func stagesAreConfigurableDurableAndNotRemovedWhileHeld() throws {
        let t = try registryRepository()
        let repo = t.repository
        #expect(try repo.stageConfig() == .defaults)
        try repo.addStage("canary", policy: StagePolicy(approvals: 1, single: true))
        try repo.setStage("production", approvals: 2, single: nil, distinctApprovers: true)
        let reopened = try t.reopen().stageConfig()
        #expect(reopened.stages["canary"] == StagePolicy(approvals: 1, single: true))
        #expect(reopened.stages["production"] == StagePolicy(approvals: 2, single: true, distinctApprovers: true))
        expectMLVError({ $0.isRefused }) { try repo.addStage("canary", policy: StagePolicy()) }
        for bad in ["latest", "v1", "Canary", ""] {
            expectMLVError({ if case .invalidName = $0 { true } else { false } }) { try repo.addStage(bad, policy: StagePolicy()) }
        }
        try repo.promote("digits@v1", to: "staging", message: "x")
        expectMLVError({ $0.isRefused }, mentions: ["staging", "digits@v1"]) { try repo.removeStage("staging") }
        #expect(try repo.stageConfig().stages["staging"] != nil)
        try repo.promote("digits@v2", to: "staging", message: "y")
        expectMLVError({ $0.isRefused }, mentions: ["staging", "more than one holder"]) {
            try repo.setStage("staging", approvals: nil, single: true, distinctApprovers: nil)
        }
        expectMLVError({ $0.isNotFound }, mentions: ["nope"]) { try repo.setStage("nope", approvals: 1, single: nil, distinctApprovers: nil) }
        try repo.removeStage("canary")
        #expect(try repo.stageConfig().stages["canary"] == nil)
        expectMLVError({ $0.isNotFound }, mentions: ["canary"]) { try repo.removeStage("canary") }
    }

    @Test func badInputNamesTheThingAndChangesNothing() throws {
        let t = try registryRepository()
        let repo = t.repository
        try repo.promote("digits@v1", to: "production", message: "x")
        let before = try t.recorded()
        expectMLVError({ $0.isNotFound }, mentions: ["nope"]) { try repo.promote("nope@v1", to: "production", message: "x") }
        expectMLVError({ $0.isNotFound }, mentions: ["digits@v9"]) { try repo.promote("digits@v9", to: "production", message: "x") }
        expectMLVError({ $0.isNotFound }, mentions: ["prod", "production"]) { try repo.promote("digits@v2", to: "prod", message: "x") }
        expectMLVError({ $0.isNotFound }, mentions: ["digits@champion"]) { try repo.promote("digits@champion", to: "staging", message: "x") }
        expectMLVError({ $0.isNotFound }, mentions: ["staging"]) { try repo.resolve("digits@staging") }
        expectMLVError({ $0.isNotFound }, mentions: ["nope"]) { try repo.approve("digits@v2", for: "nope", message: "x") }
        expectMLVError({ $0.isNotFound }, mentions: ["nope"]) { try repo.history(model: "nope") }
        expectMLVError({ $0.isRefused }, mentions: ["already holds production"]) { try repo.promote("digits@v1", to: "production", message: "x") }
        expectMLVError({ if case .invalidArgument = $0 { true } else { false } }, mentions: ["not a model"]) {
            try repo.promote("dataset:mnist@v1", to: "production", message: "x")
        }
        expectMLVError({ if case .invalidArgument = $0 { true } else { false } }, mentions: ["identity is empty"]) {
            try repo.promote("digits@v2", to: "staging", message: "x", actor: "  ")
        }
        expectMLVError({ if case .invalidArgument = $0 { true } else { false } }, mentions: ["identity is empty"]) {
            try repo.setIdentity(" ")
        }
        try expectNothingRecorded(t, since: before)
        #expect(try repo.history(model: "digits").count == 1)
    }

    @Test func auditAtAnswersWhoHeldEachStageThen() throws {
        let t = try registryRepository()
        let repo = t.repository
        let may1 = Timestamp.parse("2026-05-01T12:00Z")!
        repo.clockOverride = may1 - 86400
        try repo.promote("digits@v1", to: "production", message: "a")
        repo.clockOverride = may1 + 3600
        try repo.promote("digits@v2", to: "production", message: "b")
        #expect(try repo.registryState(model: "digits", at: may1).state.stages["production"]?.map(\.version) == [1])
        #expect(try repo.registryState(model: "digits", at: may1 + 3600).state.stages["production"]?.map(\.version) == [2])
        #expect(try repo.registryState(model: "digits", at: may1 - 2 * 86400).state.stages.isEmpty)
        // A clock that runs backwards does not make the chain's times run backwards.
        repo.clockOverride = may1 - 10 * 86400
        let e = try repo.setAlias("digits@v3", alias: "next")
        #expect(e.event.time == Timestamp.format(seconds: may1 + 3600))
        #expect(try repo.verifyChain(model: "digits").isIntact)
    }

    @Test func gcKeepsEventsAndWhatTheyNameAndMergesTheirSmallPacks() throws {
        let t = try registryRepository()
        let repo = t.repository
        for i in 0..<Repository.smallPacksToMerge {
            try repo.promote("digits@v\(i % 3 + 1)", to: i % 2 == 0 ? "production" : "staging", message: "\(i)")
        }
        let packs = try t.packFiles().count
        let report = try repo.gc(graceSeconds: 0, dryRun: false)
        #expect(report.objectsRemoved == 0 && report.packsMerged.count >= Repository.smallPacksToMerge)
        #expect(try t.packFiles().count == packs - report.packsMerged.count + 1)
        #expect(try repo.verifyChain(model: "digits").events == Repository.smallPacksToMerge)
        #expect(try repo.verifyChain(model: "digits").isIntact)
        #expect(repo.fsck(full: true).isClean)
    }
}

@Suite("registry races", .serialized)
struct RegistryRaceTests {
    /// Two promotions into production from two threads, both having read the same head:
    /// the head's lock is held by the test until both have read the head and tried to take
    /// the lock, then released. The one that gets it second finds the head moved and
    /// writes nothing.
    @Test func twoThreadsPromotingAtOnceExactlyOneWins() throws {
        let t = try registryRepository()
        try t.repository.promote("digits@v1", to: "production", message: "base")
        let repos = [try t.reopen(), try t.reopen()]
        let lock = t.repository.storePath + "/refs/model/digits/head.lock"
        try Scenario.write(.text("held by the test"), at: lock)
        let packsBefore = try t.packFiles()
        let attempts = AtomicCounter()
        let results = Mutex<[Result<RegistryHead, Error>]>([])
        try FaultInjection.withHook({ op, path in
            if op == .open && path == lock { attempts.add(1) }
            return nil
        }) {
            let threads = repos.enumerated().map { i, repo in
                startThread {
                    let r = Result { try repo.promote("digits@v\(i + 2)", to: "production", message: "race \(i)") }
                    results.withLock { $0.append(r) }
                }
            }
            try waitUntil { attempts.current >= 2 }
            unlink(lock)
            for thread in threads { pthread_join(thread, nil) }
        }
        #expect(try t.packFiles().count == packsBefore.count + 1, "the loser wrote nothing")
        let all = results.withLock { $0 }
        let won = all.compactMap { try? $0.get() }
        #expect(won.count == 1)
        for case .failure(let e) in all {
            #expect("\(e)".contains("digits@production changed since you read it"))
            if let e = e as? MLVError, case .registryChanged = e {} else { Issue.record("unexpected \(e)") }
        }
        let history = try t.repository.history(model: "digits")
        #expect(history.count == 2)
        #expect(history[0].id == won.first?.id)
        #expect(history[0].event.state.stages["production"]?.count == 1)
        #expect(try t.repository.verifyChain(model: "digits").isIntact)
    }
}

/// Polls `condition` every 10 ms for up to `seconds`.
func waitUntil(seconds: Int = 20, _ condition: () throws -> Bool) throws {
    let deadline = monotonicMilliseconds() + seconds * 1000
    while try !condition() && monotonicMilliseconds() < deadline { usleep(10_000) }
}

private final class ThreadBody: @unchecked Sendable {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Runs `body` on a thread of its own (not a Dispatch worker, so a blocked body cannot
/// starve the pack writer's I/O queue).
func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    return thread
}

@Suite("registry write faults", .serialized)
struct RegistryFaultTests {
    /// The head's rename fails after the event is durable (a crash at that point): the
    /// change fails, the head and state are as before, the lock is released, fsck is clean,
    /// and audit --verify reports the stray event; the next change goes through and makes
    /// the chain whole again.
    @Test func aFailedHeadMoveChangesNothing() throws {
        let t = try registryRepository()
        let repo = t.repository
        let first = try repo.promote("digits@v1", to: "production", message: "a")
        let modelRefs = repo.storePath + "/refs/model/digits"
        FaultInjection.withHook({ op, path in
            op == .rename && path.hasPrefix(modelRefs + "/") ? EIO : nil
        }) {
            expectMLVError({ if case .store(.io) = $0 { true } else { false } }) {
                try repo.promote("digits@v2", to: "production", message: "b")
            }
        }
        #expect(try repo.registryHead(model: "digits")?.id == first.id)
        #expect(try repo.resolve("digits@production").version == 1)
        #expect(!FS.exists(modelRefs + "/head.lock"))
        #expect(repo.fsck().isClean)
        let report = try repo.verifyChain(model: "digits")
        #expect(report.problem?.contains("crashed before moving it") == true, "\(report.problem ?? "")")
        try repo.promote("digits@v2", to: "production", message: "b again")
        #expect(try repo.verifyChain(model: "digits").isIntact)
        #expect(try repo.history(model: "digits").count == 2)
    }
}

@Suite("audit tampering")
struct TamperTests {
    func promotedTwice() throws -> (TestRepository, [ObjectID]) {
        let t = try registryRepository()
        let a = try t.repository.promote("digits@v1", to: "production", message: "first")
        let b = try t.repository.promote("digits@v2", to: "production", message: "second")
        let c = try t.repository.setAlias("digits@v3", alias: "next", message: "third")
        return (t, [a.id, b.id, c.id])
    }

    /// Rewrites the stored payload of `id` in its pack file: an edit to its JSON that
    /// compresses to the same stored length, with the record checksum resealed, so only
    /// the id (the SHA-256) can tell.
    func rewritePayload(_ repo: Repository, _ id: ObjectID, replacing old: String, with candidates: [String]) throws {
        let (index, entry) = try #require(repo.objects.locate(id))
        let original = try repo.objects.read(id).bytes
        let text = String(decoding: original, as: UTF8.self)
        #expect(entry.isCompressed)
        for candidate in candidates {
            let edited = Array(text.replacing(old, with: candidate).utf8)
            guard edited != original, edited.count == original.count,
                  let stored = edited.withUnsafeBytes({ Deflate.compress($0, level: 6) }), stored.count == entry.storedLength else { continue }
            let payloadOffset = entry.offset + PackFormat.recordHeaderSize
            for (i, b) in stored.enumerated() { try patchFile(index.packPath, at: payloadOffset + i) { _ in b } }
            let sum = UInt32(truncatingIfNeeded: XXHash.xxh3_64(stored))
            for i in 0..<4 { try patchFile(index.packPath, at: entry.offset + 44 + i) { _ in UInt8(truncatingIfNeeded: sum >> (8 * UInt32(i))) } }
            return
        }
        Issue.record("no edit compressed to the same length")
    }

    @Test func anEditedEventIsNamed() throws {
        let (t, ids) = try promotedTwice()
        let letters = "abcdefghijklmnopqrstuvwxyz".map { "\"message\":\"\($0)econd\"" }
        try rewritePayload(t.repository, ids[1], replacing: "\"message\":\"second\"", with: letters)
        let repo = try t.reopen()
        let report = try repo.verifyChain(model: "digits")
        #expect(!report.isIntact)
        #expect(report.problem?.contains(ids[1].hex) == true, "\(report.problem ?? "")")
        #expect(report.problem?.contains("seq 2") == true && report.problem?.contains("altered") == true, "\(report.problem ?? "")")
    }

    @Test func aHeadMovedBackIsNamed() throws {
        let (t, ids) = try promotedTwice()
        let head = t.repository.storePath + "/refs/model/digits/head"
        try Scenario.write(.text(ids[0].hex + "\n"), at: head)
        let report = try t.reopen().verifyChain(model: "digits")
        #expect(!report.isIntact)
        #expect(report.problem?.contains("moved back") == true, "\(report.problem ?? "")")
    }

    @Test func verifyingEveryModelNamesOnlyTheDamagedOne() throws {
        let (t, ids) = try promotedTwice()
        try t.write("other.bin", "other\n")
        _ = try t.repository.addModel(AddModelRequest(name: "other", path: t.path("other.bin")))
        try t.repository.promote("other@v1", to: "staging", message: "x")
        try t.repository.promote("other@v1", to: "production", message: "y")
        try Scenario.write(.text(ids[1].hex + "\n"), at: t.repository.storePath + "/refs/model/digits/head")
        let reports = try t.reopen().verifyChains(models: ["digits", "other"])
        #expect(reports.map(\.model) == ["digits", "other"])
        #expect(reports[0].problem?.contains(ids[2].hex) == true, "\(reports[0].problem ?? "")")
        #expect(reports[1].isIntact && reports[1].events == 2)
    }

    @Test func aDeletedEventIsNamed() throws {
        let (t, ids) = try promotedTwice()
        // Each registry change writes its event in a pack of its own: deleting the
        // record is deleting that pack and its index.
        let (index, _) = try #require(t.repository.objects.locate(ids[1]))
        #expect(index.count == 1)
        unlink(index.packPath)
        unlink(index.indexPath)
        let report = try t.reopen().verifyChain(model: "digits")
        #expect(!report.isIntact)
        #expect(report.problem?.contains(ids[1].hex) == true && report.problem?.contains("missing") == true, "\(report.problem ?? "")")
        #expect(try !t.reopen().fsck().isClean)
    }

    @Test func aSplicedChainIsNamed() throws {
        // An attacker writes a well-formed event that skips seq 2, pointing at seq 1.
        let (t, ids) = try promotedTwice()
        let repo = t.repository
        let first = try repo.event(ids[0])
        let third = try repo.event(ids[2])
        var forged = third
        forged.previous = ids[0]
        let bytes = forged.canonicalBytes()
        let id = SHA256.hash(bytes)
        let w = repo.objects.writer()
        try w.put(id, kind: .manifest, bytes: bytes, compression: .always)
        try w.commit()
        try Scenario.write(.text(id.hex + "\n"), at: repo.storePath + "/refs/model/digits/head")
        let report = try t.reopen().verifyChain(model: "digits")
        #expect(!report.isIntact)
        #expect(report.problem?.contains(ids[0].hex) == true && first.seq == 1 && report.problem?.contains("removed or reordered") == true, "\(report.problem ?? "")")
    }
}
