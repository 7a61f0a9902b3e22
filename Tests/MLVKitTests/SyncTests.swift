import Dispatch
import MLVBasics
@testable import MLVKit
import MLVModel
import MLVRemote
import MLVStore
import MLVTestSupport
import Testing

/// A store with datasets `mnist` (v1, v2) and `cifar`, and model `digits` v1..v3 with
/// v2 in production and v1 archived.
func syncSource() throws -> TestRepository {
    let t = try registryRepository(versions: 3)
    try t.write("data", ["train/a.csv": "1,2\n", "eval/b.csv": "3,4\n", "big.bin": .random(seed: 9, count: 300_000)])
    try t.add("mnist", "data")
    try t.write("c", ["x.txt": "cifar\n"])
    try t.add("cifar", "c")
    try t.repository.promote("digits@v1", to: "production", message: "first")
    try t.repository.promote("digits@v2", to: "production", message: "better", actor: "bob@lab")
    return t
}

/// A clone of `remote` in a fresh directory (on tmpfs with `inMemory`), with `remote`
/// behind the name `origin`.
func cloneOf(_ remote: any Remote, lazy: Bool = false, inMemory: Bool = false) throws -> (TemporaryDirectory, Repository) {
    let dir = try TemporaryDirectory(prefix: "mlv-clone", inMemory: inMemory)
    let (repo, _) = try Repository.clone(RemoteSettings(name: "origin", url: "memory://" + remote.location), remote: remote,
                                         into: dir.appending("c"), lazy: lazy, jobs: 2)
    repo.remoteOverrides.withLock { $0["memory://" + remote.location] = remote }
    return (dir, repo)
}

/// Refs of a store as `name -> id`, for comparing two stores.
func refMap(_ repo: Repository) throws -> [String: ObjectID] {
    Dictionary(uniqueKeysWithValues: try repo.localRemoteRefs().map { ($0.key.key, $0.value) })
}

extension MLVError {
    var isRemoteConflict: Bool { if case .remoteConflict = self { true } else { false } }
    var isDamaged: Bool { if case .damaged = self { true } else { false } }
}

/// The remote kinds every sync test runs against (S3 joins when its client lands).
/// S3 runs only where moto_server is installed (`.ci/run` installs it).
enum RemoteKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case memory, directory, s3
    var description: String { rawValue }

    static var available: [RemoteKind] { MotoServer.isInstalled ? allCases : [.memory, .directory] }

    /// A fresh, empty remote of this kind; the directory lives as long as the remote.
    func make(_ name: String) throws -> any Remote {
        switch self {
        case .memory: return InMemoryRemote(location: "mem-" + name)
        case .directory: return try KeptDirectoryRemote(name)
        case .s3: return try MotoServer.shared().remote()
        }
    }
}

@Suite("push, fetch and pull")
struct SyncTests {
    @Test(arguments: RemoteKind.available) func pushThenCloneRoundTripsDatasetsModelsStagesAndAudit(kind: RemoteKind) throws {
        let a = try syncSource()
        let remote = try kind.make("roundtrip")
        let pushed = try a.repository.push(to: remote, remoteName: "origin", jobs: 2)
        #expect(pushed.packs >= 1 && pushed.objects > 0)
        #expect(pushed.refsUpdated.contains("model:digits registry"))

        let (dir, b) = try cloneOf(remote)
        _ = dir
        #expect(try refMap(b) == refMap(a.repository))
        #expect(try b.resolve("digits@production").version == 2)
        #expect(try b.resolve("digits@archived").version == 1)
        #expect(try b.verifyChain(model: "digits").isIntact)
        #expect(b.fsck(full: true).isClean)
        _ = try b.checkout("mnist@v2", to: dir.appending("out"))
        #expect(try Scenario.snapshot(dir.appending("out")) == a.snapshot("data"))
    }

    @Test(arguments: RemoteKind.available) func pushingTwiceSendsNothingTheSecondTime(kind: RemoteKind) throws {
        let a = try syncSource()
        let remote = CountingRemote(try kind.make("twice"))
        _ = try a.repository.push(to: remote, remoteName: "origin")
        #expect(remote.count("put") >= 2)
        remote.reset()
        let again = try a.repository.push(to: remote, remoteName: "origin")
        #expect(again.upToDate)
        #expect(remote.writes == 0)
        // One marker read, one listing of refs, one head of the stage configuration and a
        // listing of damage notes at most: no pack index is read.
        #expect(remote.total <= 4, "\(remote.total) requests")
    }

    @Test(arguments: RemoteKind.available) func anInterruptedPushResumesWithoutResendingWhatArrived(kind: RemoteKind) throws {
        let a = try syncSource()
        a.repository.pushPackBytes = 4 << 10  // many small packs
        let memory = try kind.make("interrupt")
        // The marker, one whole pack, and the data of the next without its index.
        let failing = FailingRemote(memory, writesAllowed: 4)
        #expect(throws: MLVError.self) { try a.repository.push(to: failing, remoteName: "origin", jobs: 1) }
        // Refs go last: none landed, so the remote names nothing it lacks.
        #expect(try memory.list(prefix: "refs/").isEmpty)
        let arrived = Set(try memory.list(prefix: "packs/").map(\.key))
        #expect(arrived.filter { $0.hasSuffix(".pack") }.count == 2 && arrived.filter { $0.hasSuffix(".idx") }.count == 1)

        let counting = CountingRemote(memory)
        let result = try a.repository.push(to: counting, remoteName: "origin", jobs: 1)
        #expect(!result.refsUpdated.isEmpty)
        #expect(Set(counting.keysPut).isDisjoint(with: arrived), "resent \(Set(counting.keysPut).intersection(arrived))")
        let (dir, b) = try cloneOf(memory)
        _ = dir
        #expect(try refMap(b) == refMap(a.repository))
        #expect(b.fsck(full: true).isClean)
    }

    @Test(arguments: RemoteKind.available) func twoClonesPushingAtOnceBothLandOrOneGetsAConflict(kind: RemoteKind) throws {
        let a = try syncSource()
        let remote = try kind.make("race")
        _ = try a.repository.push(to: remote, remoteName: "origin")
        let (d1, one) = try cloneOf(remote)
        let (d2, two) = try cloneOf(remote)
        try Scenario.write(["n.txt": "one\n"], under: d1.appending("new"))
        try Scenario.write(["n.txt": "two\n"], under: d2.appending("new"))
        _ = try one.addDataset(AddDatasetRequest(name: "mnist", path: d1.appending("new")))
        _ = try two.addDataset(AddDatasetRequest(name: "mnist", path: d2.appending("new")))
        try Scenario.write(["o.txt": "other\n"], under: d2.appending("other"))
        _ = try two.addDataset(AddDatasetRequest(name: "other", path: d2.appending("other")))

        let outcomes = Locked<[Result<PushResult, Error>]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let r = Result { try (i == 0 ? one : two).push(to: remote, remoteName: "origin", jobs: 2) }
            outcomes.withLock { $0.append(r) }
        }
        let results = outcomes.withLock { $0 }
        let failures = results.compactMap { r -> Error? in if case .failure(let e) = r { e } else { nil } }
        #expect(failures.count == 1, "both pushed mnist@v3: exactly one wins")
        for e in failures {
            #expect((e as? MLVError)?.isRemoteConflict == true, "\(e)")
            #expect("\(e)".contains("mnist@v3"))
        }
        // The loser pulls (its v3 becomes v4) and pushes; nothing is lost.
        for repo in [one, two] {
            let pulled = try repo.pull(from: remote, remoteName: "origin")
            #expect(pulled.conflicts.isEmpty, "\(pulled.conflicts)")
            _ = try repo.push(to: remote, remoteName: "origin")
        }
        let (d3, three) = try cloneOf(remote)
        _ = (d3)
        let ids = Set(try three.versions(of: "mnist").map(\.id))
        for repo in [one, two] {
            for v in try repo.versions(of: "mnist") { #expect(ids.contains(v.id)) }
        }
        #expect(try three.versions(of: "mnist").count == 4)
    }

    @Test(arguments: RemoteKind.available) func aPullRenumbersALocalOnlyVersionThatCollides(kind: RemoteKind) throws {
        let a = try syncSource()
        let remote = try kind.make("renumber")
        _ = try a.repository.push(to: remote, remoteName: "origin")
        let (d1, one) = try cloneOf(remote)
        let (d2, two) = try cloneOf(remote)
        try Scenario.write(["n.txt": "one\n"], under: d1.appending("new"))
        try Scenario.write(["n.txt": "two\n"], under: d2.appending("new"))
        let oneV3 = try one.addDataset(AddDatasetRequest(name: "mnist", path: d1.appending("new")))
        let twoV3 = try two.addDataset(AddDatasetRequest(name: "mnist", path: d2.appending("new")))
        #expect(oneV3.version == 3 && twoV3.version == 3)
        _ = try one.push(to: remote, remoteName: "origin")
        expectMLVError({ $0.isRemoteConflict }, mentions: ["mnist@v3", "pull"]) {
            try two.push(to: remote, remoteName: "origin")
        }
        let pulled = try two.pull(from: remote, remoteName: "origin")
        #expect(pulled.renumbered.count == 1)
        #expect(pulled.renumbered.first?.artifact == "dataset:mnist" && pulled.renumbered.first?.from == 3 && pulled.renumbered.first?.to == 4)
        #expect(try two.resolve("mnist@v3").id == oneV3.id)
        #expect(try two.resolve("mnist@v4").id == twoV3.id)
        _ = try two.push(to: remote, remoteName: "origin")
        #expect(try one.pull(from: remote, remoteName: "origin").created == ["dataset:mnist@v4"])
        #expect(try one.resolve("mnist@v4").id == twoV3.id)
        #expect(one.fsck().isClean && two.fsck().isClean)
    }

    @Test(arguments: RemoteKind.available) func aStageMovedOnTheRemoteRefusesThePushAndAPullReportsTheDivergence(kind: RemoteKind) throws {
        let a = try syncSource()
        let remote = try kind.make("stage")
        _ = try a.repository.push(to: remote, remoteName: "origin")
        let (d1, one) = try cloneOf(remote)
        let (d2, two) = try cloneOf(remote)
        _ = (d1, d2)
        try one.promote("digits@v3", to: "production", message: "ship v3", actor: "carol@lab")
        try two.promote("digits@v1", to: "staging", message: "retry v1", actor: "dave@lab")
        _ = try one.push(to: remote, remoteName: "origin")
        let before = try #require(try remote.get("refs/model/digits/head"))
        let e = expectMLVError({ $0.isRemoteConflict }, mentions: ["model:digits registry"]) {
            try two.push(to: remote, remoteName: "origin")
        }
        #expect(e.map { "\($0)".contains("nothing was sent") } == true)
        #expect(try remote.get("refs/model/digits/head") == before)

        // After a fetch the push knows who moved it.
        _ = try two.fetch(from: remote, remoteName: "origin")
        expectMLVError({ $0.isRemoteConflict }, mentions: ["carol@lab", "promote v3 to production"]) {
            try two.push(to: remote, remoteName: "origin")
        }
        let mine = try two.registryHead(model: "digits")?.id
        let pulled = try two.pull(from: remote, remoteName: "origin")
        #expect(pulled.conflicts.count == 1 && pulled.conflicts[0].contains("diverged"))
        #expect(try two.registryHead(model: "digits")?.id == mine, "a diverged chain is never rewritten")
        #expect(try two.verifyChain(model: "digits").isIntact)
        #expect(try two.remoteStatus(remote, remoteName: "origin") == [RemoteRefStatus(ref: "model:digits registry", state: .diverged)])

        // A store that only fell behind fast-forwards.
        let pulledA = try a.repository.pull(from: remote, remoteName: "origin")
        #expect(pulledA.moved == ["model:digits registry"] && pulledA.conflicts.isEmpty)
        #expect(try a.repository.resolve("digits@production").version == 3)
    }

    @Test(arguments: RemoteKind.available) func aCorruptRemoteObjectIsReportedByIDNotStoredAndAPushReplacesIt(kind: RemoteKind) throws {
        let a = try syncSource()
        let remote = try kind.make("corrupt")
        _ = try a.repository.push(to: remote, remoteName: "origin")
        // Flip a byte inside the payload of the first record of the biggest pack.
        let pack = try #require(try remote.list(prefix: "packs/").filter { $0.key.hasSuffix(".pack") }.max { $0.size < $1.size })
        var bytes = try #require(try remote.get(pack.key)).bytes
        let victim = bytes.withUnsafeBytes { ObjectID(bytes: UnsafeRawBufferPointer(rebasing: $0[8..<40])) }
        bytes[8 + 48 + 3] ^= 0xff
        _ = try remote.put(pack.key, bytes)

        let dir = try TemporaryDirectory(prefix: "mlv-clone")
        let e = expectMLVError({ $0.isDamaged }, mentions: [victim.hex]) {
            try Repository.clone(RemoteSettings(name: "origin", url: "memory://x"), remote: remote, into: dir.appending("c"))
        }
        _ = e
        let b = try Repository.open(searchingFrom: dir.appending("c"))
        #expect(b.objects.locate(victim) == nil, "a damaged object is not stored")
        #expect(try b.localRemoteRefs().isEmpty, "no ref names what did not arrive")
        #expect(!(try remote.list(prefix: "damaged/")).isEmpty)

        // The source still has a good copy; its next push sends it again.
        let again = try a.repository.push(to: remote, remoteName: "origin")
        #expect(again.objects >= 1)
        #expect(try remote.list(prefix: "damaged/").isEmpty)
        let pulled = try b.pull(from: remote, remoteName: "origin")
        #expect(pulled.conflicts.isEmpty)
        #expect(try refMap(b) == refMap(a.repository))
        #expect(b.fsck(full: true).isClean)
    }

    @Test(arguments: RemoteKind.available) func aLazyCloneFetchesObjectsWhenACheckoutNeedsThem(kind: RemoteKind) throws {
        let a = try syncSource()
        let remote = try kind.make("lazy")
        _ = try a.repository.push(to: remote, remoteName: "origin")
        let (dir, b) = try cloneOf(remote, lazy: true)
        let big = try #require(try a.repository.listFiles("mnist@v2").1.first { $0.path == "big.bin" }?.id)
        #expect(b.objects.locate(big) == nil || b.objects.info(big)?.kind == .chunkList)
        // fsck tells chunks left on the remote from lost ones: warnings, not damage.
        let lazyCheck = b.fsck(full: true)
        #expect(lazyCheck.isClean, "\(lazyCheck.problems)")
        #expect(lazyCheck.problems.contains { $0.severity == .warning && $0.message.contains("lazy pull") })
        let counting = CountingRemote(remote)
        b.remoteOverrides.withLock { $0["memory://" + remote.location] = counting }
        _ = try b.checkout("mnist@v2", to: dir.appending("out"))
        #expect(try Scenario.snapshot(dir.appending("out")) == a.snapshot("data"))
        #expect(counting.count("getRange") + counting.count("download") >= 1)
        // A second checkout needs nothing from the remote.
        counting.reset()
        _ = try b.checkout("mnist@v2", to: dir.appending("out2"))
        #expect(counting.total == 0)
        // Without a remote index naming them, the model files still on the remote are damage.
        try FS.removeTree(b.remoteDirectory("origin") + "/packs")
        let model = try #require(try b.listFiles("digits@v1").1.first?.id)
        #expect(b.fsck().problems.contains { $0.severity == .error && $0.subject == model.hex })
    }

    @Test(arguments: RemoteKind.available) func pushingSomeRefsSendsOnlyThoseVersionsAndWhatTheyNeed(kind: RemoteKind) throws {
        let a = try syncSource()
        let remote = try kind.make("some")
        let r = try a.repository.push(to: remote, remoteName: "origin", refs: ["cifar"])
        #expect(r.refsUpdated == ["dataset:cifar@v1"])
        let (dir, b) = try cloneOf(remote)
        _ = dir
        #expect(try b.datasets().map(\.name) == ["cifar"])
        #expect(b.fsck().isClean)
        #expect(try a.repository.remoteStatus(remote, remoteName: "origin").contains(RemoteRefStatus(ref: "dataset:mnist@v1", state: .localOnly)))
        #expect(try b.remoteStatus(remote, remoteName: "origin").isEmpty)
    }

    @Test(arguments: RemoteKind.available)
    func pushingOneModelVersionSendsItsRegistryAndTheVersionsItsChainNames(kind: RemoteKind) throws {
        let a = try syncSource()
        let remote = try kind.make("model-version")
        let r = try a.repository.push(to: remote, remoteName: "origin", refs: ["digits@v3"])
        // v1 and v2 are named by the registry's events (archived, production); v3 was asked for.
        #expect(r.refsUpdated == ["model:digits@v1", "model:digits@v2", "model:digits@v3", "model:digits registry"])
        let (dir, b) = try cloneOf(remote)
        _ = dir
        #expect(try b.datasets().isEmpty, "the models' training data travels as objects they need, not as versions")
        #expect(try b.resolve("digits@production").version == 2)
        #expect(try b.resolve("digits@archived").version == 1)
        #expect(try b.verifyChain(model: "digits").isIntact)
        #expect(b.fsck(full: true).isClean)
        #expect(try a.repository.remoteStatus(remote, remoteName: "origin").contains(RemoteRefStatus(ref: "dataset:cifar@v1", state: .localOnly)))

        // A promotion here travels with a push of the model by name, under the full push's rules.
        try a.repository.promote("digits@v3", to: "production", message: "ship v3", actor: "carol@lab")
        let moved = try a.repository.push(to: remote, remoteName: "origin", refs: ["model:digits"])
        #expect(moved.refsUpdated == ["model:digits registry"])
        _ = try b.pull(from: remote, remoteName: "origin")
        #expect(try b.resolve("digits@production").version == 3)

        // The registry moved on the remote since: a push of one version is refused, nothing sent.
        try b.promote("digits@v1", to: "staging", message: "retry v1", actor: "dave@lab")
        _ = try b.push(to: remote, remoteName: "origin", refs: ["digits@v1"])
        try a.repository.promote("digits@v2", to: "staging", message: "compare", actor: "erin@lab")
        let before = try #require(try remote.get("refs/model/digits/head"))
        expectMLVError({ $0.isRemoteConflict }, mentions: ["model:digits registry", "nothing was sent"]) {
            try a.repository.push(to: remote, remoteName: "origin", refs: ["digits@v2"])
        }
        #expect(try remote.get("refs/model/digits/head") == before)
    }

    /// A registry changed on both sides, pulled with `rebaseRegistries`: the remote's
    /// events are kept and the local ones recorded again on top, same actors and actions,
    /// each saying where it came from; one that no longer applies is reported and the
    /// rest still go; the result pushes and clones like any registry.
    @Test func aDivergedRegistryIsRebasedOntoTheRemotes() throws {
        let a = try syncSource()
        let remote = InMemoryRemote(location: "mem-rebase")
        _ = try a.repository.push(to: remote, remoteName: "origin")
        let (d1, one) = try cloneOf(remote)
        let (d2, two) = try cloneOf(remote)
        _ = (d1, d2)
        try one.promote("digits@v3", to: "production", message: "ship v3", actor: "carol@lab")
        _ = try one.push(to: remote, remoteName: "origin")
        let theirs = try #require(try one.registryHead(model: "digits")?.id)

        try two.setAlias("digits@v1", alias: "champion", message: "best so far", actor: "dave@lab")
        try two.approve("digits@v3", for: "staging", message: "looks fine", actor: "dave@lab")
        try two.promote("digits@v3", to: "production", message: "ship v3 too", actor: "dave@lab")
        try two.promote("digits@v1", to: "staging", message: "retry v1", actor: "dave@lab")

        let r = try two.pull(from: remote, remoteName: "origin", rebaseRegistries: true)
        #expect(r.moved == ["model:digits registry"])
        #expect(r.replayed.count == 3, "\(r.replayed)")
        #expect(r.conflicts.count == 1 && r.conflicts[0].contains("promote v3 to production") && r.conflicts[0].contains("not re-applied"),
                "\(r.conflicts)")
        let head = try #require(try two.registryHead(model: "digits"))
        #expect(two.chainIDs(from: head.id).contains(theirs), "the remote's events are kept, below ours")
        #expect(try two.verifyChain(model: "digits").isIntact)
        #expect(try two.resolve("digits@production").version == 3)
        #expect(try two.resolve("digits@staging").version == 1)
        #expect(try two.resolve("digits@champion").version == 1)
        let replayed = try two.history(model: "digits").prefix(3)
        #expect(replayed.allSatisfy { $0.event.actor == "dave@lab" && $0.event.message.contains("re-applied after pull") })
        #expect(replayed.last?.event.message.hasPrefix("best so far") == true)

        _ = try two.push(to: remote, remoteName: "origin")
        let (d3, three) = try cloneOf(remote)
        _ = d3
        #expect(try three.registryHead(model: "digits")?.id == head.id)
        #expect(try three.verifyChain(model: "digits").isIntact)
    }

    /// Pulling one model version brings its registry head and the versions the
    /// registry's events name, as a push of one version sends them; nothing else comes.
    @Test func pullingOneModelVersionBringsItsRegistryAndTheVersionsItsChainNames() throws {
        let a = try syncSource()
        let remote = InMemoryRemote(location: "mem-pull-version")
        _ = try a.repository.push(to: remote, remoteName: "origin", refs: ["cifar"])
        let (dir, b) = try cloneOf(remote)
        _ = dir
        _ = try a.repository.push(to: remote, remoteName: "origin")
        let r = try b.pull(from: remote, remoteName: "origin", refs: ["digits@v3"])
        #expect(r.conflicts.isEmpty)
        #expect(try b.modelVersions(of: "digits").map(\.version) == [1, 2, 3])
        #expect(try b.resolve("digits@production").version == 2)
        #expect(try b.resolve("digits@archived").version == 1)
        #expect(try b.verifyChain(model: "digits").isIntact)
        #expect(try b.datasets().map(\.name) == ["cifar"], "mnist was not asked for")
        #expect(b.fsck(full: true).isClean)
        expectMLVError({ $0.isNotFound }, mentions: ["digits@v9"]) {
            try b.pull(from: remote, remoteName: "origin", refs: ["digits@v9"])
        }
    }

    @Test func aDatasetVersionPushesAloneAndAnArtifactByNamePushesEveryVersion() throws {
        let a = try syncSource()
        let remote = InMemoryRemote(location: "mem-by-name")
        #expect(try a.repository.push(to: remote, remoteName: "origin", refs: ["mnist@v1"]).refsUpdated == ["dataset:mnist@v1"])
        #expect(try a.repository.push(to: remote, remoteName: "origin", refs: ["mnist"]).refsUpdated == ["dataset:mnist@v2"])
        expectMLVError({ $0.isNotFound }, mentions: ["nope"]) { try a.repository.push(to: remote, remoteName: "origin", refs: ["nope"]) }
    }

    @Test func remotesAreConfiguredByNameAndIncompatibleOnesRefused() throws {
        let a = try syncSource()
        let repo = a.repository
        expectMLVError({ $0.isNotFound }, mentions: ["no remote 'nope'", "mlv remote add"]) { try repo.remoteSettings("nope") }
        let remote = InMemoryRemote(location: "mem-config")
        try repo.addRemote(RemoteSettings(name: "origin", url: "s3://bucket/p", endpoint: "http://127.0.0.1:9", region: "us-east-1"), remote: remote)
        #expect(try repo.remotes() == [RemoteSettings(name: "origin", url: "s3://bucket/p", endpoint: "http://127.0.0.1:9", region: "us-east-1")])
        expectMLVError({ $0.isRefused }, mentions: ["already exists"]) {
            try repo.addRemote(RemoteSettings(name: "origin", url: "/elsewhere"), remote: remote)
        }
        expectMLVError({ $0.isNotFound }, mentions: ["no remote 'other'", "origin"]) { try repo.remoteSettings("other") }
        #expect(try repo.remoteSettings(nil).name == "origin")
        try repo.removeRemote("origin")
        #expect(try repo.remotes().isEmpty)

        // A remote made with other chunker settings, or by a newer mlv, is refused.
        let other = InMemoryRemote(location: "mem-other")
        _ = try other.put(RemoteMarker.key, RemoteMarker(format: 1, chunker: ChunkerParameters(min: 4096, avg: 16384, max: 65536)).encoded())
        expectMLVError({ $0.isRefused }, mentions: ["chunker", "4096/16384/65536"]) { try repo.push(to: other, remoteName: "x") }
        let newer = InMemoryRemote(location: "mem-newer")
        _ = try newer.put(RemoteMarker.key, Array(#"{"chunker":{"avg":65536,"max":262144,"min":16384},"format":2,"schema":"mlv.remote/1"}"#.utf8))
        expectMLVError({ $0.isRefused }, mentions: ["format 2", "Upgrade"]) { try repo.push(to: newer, remoteName: "x") }
    }

    @Test func aRemoteThatIgnoresConditionalWritesIsRefused() throws {
        let a = try syncSource()
        expectMLVError({ $0.isRefused }, mentions: ["If-None-Match"]) {
            try a.repository.addRemote(RemoteSettings(name: "bad", url: "/x"), remote: IgnoresConditions(InMemoryRemote(location: "mem-bad")))
        }
        #expect(try a.repository.remotes().isEmpty)
    }
}

@Suite("remote refs")
struct RemoteRefTests {
    @Test(arguments: [
        ("refs/dataset/mnist/versions/3", RemoteRef.version(kind: "dataset", name: "mnist", number: 3)),
        ("refs/model/digits/head", RemoteRef.head(kind: "model", name: "digits")),
        ("refs/dataset/mnist/aliases/best", RemoteRef.alias(kind: "dataset", name: "mnist", alias: "best")),
        ("stages", RemoteRef.stages),
    ])
    func wellFormedKeysParseAndRoundTrip(key: String, ref: RemoteRef) {
        #expect(RemoteRef(key: key) == ref)
        #expect(ref.key == key)
    }

    @Test(arguments: [
        "refs/dataset/../versions/1", "refs/dataset/mnist/versions/03", "refs/dataset/mnist/versions/0",
        "refs/dataset/Mnist/versions/1", "refs/run/x/head", "refs/dataset/mnist/aliases/a.lock",
        "refs/dataset/mnist/versions/1/x", "refs/dataset/mnist", "packs/x.pack", "refs/model/d/head/",
    ])
    func anythingElseIsIgnored(key: String) {
        #expect(RemoteRef(key: key) == nil)
    }

    @Test func refsAreWrittenVersionsFirstAndHeadsLast() {
        let refs: [RemoteRef] = [.head(kind: "model", name: "a"), .alias(kind: "dataset", name: "b", alias: "x"),
                                 .stages, .version(kind: "model", name: "a", number: 2)]
        #expect(refs.sorted() == [.version(kind: "model", name: "a", number: 2), .stages,
                                  .alias(kind: "dataset", name: "b", alias: "x"), .head(kind: "model", name: "a")])
    }
}
