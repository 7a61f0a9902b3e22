import MLVBasics
import MLVModel
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Whether the long versions of the loops run (`MLV_LONG_TESTS=1`).
let longTests = getenv("MLV_LONG_TESTS").map { String(cString: $0) == "1" } ?? false

@Suite("kill loop: SIGKILL at random moments of a large add")
struct KillLoopTests {
    /// A large add (one 16 MiB file and 150 small ones, about 22 MiB) is killed with
    /// SIGKILL at seeded random moments, again and again, each time with a few MiB of new
    /// data. After every kill the store passes fsck, every ref is whole, no version was
    /// lost, and at the end an add goes through and every version checks out.
    @Test func killedAtRandomMoments() throws {
        let s = try Session(identity: "kill@test")
        try s.mlv("init")
        var small: [(String, ScenarioEntry)] = []
        for i in 0..<150 { small.append(("small/f\(i).bin", .random(seed: UInt64(1000 + i), count: 40_000))) }
        for (name, entry) in small { try s.write("data/" + name, entry) }
        try s.write("data/big.bin", .random(seed: 7, count: 16 << 20))

        try s.mlv("add", "dataset", "big", "data")

        var rng = SplitMix64(seed: 2026)
        // New content for each round: 4 MiB rewritten inside the big file and a few new small files.
        func change(_ round: Int) throws {
            let offset = Int(rng.next() % UInt64(12 << 20))
            try overwrite(s.path("data/big.bin"), at: offset, with: splitmix64Bytes(seed: rng.next(), count: 4 << 20))
            for j in 0..<5 { try s.write("data/small/r\(round)-\(j).bin", .random(seed: rng.next(), count: 30_000)) }
        }
        // The kill moments are drawn from the time one such re-add takes on this machine
        // now (measured, not assumed), so most rounds kill an add in flight however loaded
        // the machine is.
        try change(-1)
        let start = monotonicMilliseconds()
        try s.mlv("add", "dataset", "big", "data")
        let baseline = max(monotonicMilliseconds() - start, 20)

        var versions = 2, killed = 0
        let rounds = longTests ? 60 : 8
        for round in 0..<rounds {
            try change(round)
            let delay = Int(rng.next() % UInt64(baseline * 9 / 10)) + 1
            let child = try MLVBinary.start(["add", "dataset", "big", "data"], in: s.directory, environment: s.environment)
            usleep(useconds_t(delay * 1000))
            kill(child.pid, SIGKILL)
            let r = child.wait()
            #expect(r.status == killedBySIGKILL || r.status == 0, "round \(round): \(r)")
            if r.status == killedBySIGKILL { killed += 1 }

            let check = try MLVBinary.run(["fsck"], in: s.directory, environment: s.environment)
            #expect(check.status == 0, "round \(round), killed after \(delay) ms: \(check)")
            for (path, content) in try refFiles(s) {
                #expect(isWholeRef(content), "round \(round): \(path) holds \(content.debugDescription)")
            }
            let now = try s.json("log", "dataset", "big").array?.count ?? 0
            #expect(now == versions || now == versions + 1, "round \(round): \(versions) versions before, \(now) after")
            versions = now
        }
        #expect(killed >= rounds / 4, "only \(killed) of \(rounds) adds were killed before they finished")

        // The store is usable: the next add works, every version reads back verified.
        try s.mlv("add", "dataset", "big", "data")
        try s.mlv("checkout", "big", "--to", "latest")
        #expect(try Scenario.snapshot(s.path("latest")) == Scenario.snapshot(s.path("data")))
        try s.mlv("checkout", "big@v1", "--to", "first")
        #expect(try Scenario.read(s.path("first/small/f3.bin")) == splitmix64Bytes(seed: 1003, count: 40_000))
        try s.mlv("fsck", "--full")
        try s.mlv("gc", "--grace", "0")
        let clean = try s.mlv("fsck", "--full")
        #expect(!clean.stdout.contains("warning"), "gc removed every leftover: \(clean)")
    }

    func overwrite(_ path: String, at offset: Int, with bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileSystemError(call: "open", path: path, errno: errno) }
        defer { close(fd) }
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard n == bytes.count else { throw FileSystemError(call: "pwrite", path: path, errno: errno) }
    }
}
