import MLVBasics
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The per-model summaries in `.mlv/index.sqlite` as the built binary serves them: every
/// listing prints the same with the index, after another process changed the registry,
/// after a head was moved back by hand, and with the index deleted.
@Suite("model summaries end to end")
struct ModelSummaryEndToEndTests {
    @Test func listingsMatchTheRefsAfterChangesAndWithoutTheIndex() throws {
        let s = try Session(identity: "alice@lab")
        try s.mlv("init")
        for (i, m) in ["a", "a", "b"].enumerated() {
            try s.write("\(m).bin", .random(seed: UInt64(90 + i), count: 2000))
            try s.mlv("add", "model", m, "\(m).bin")
        }
        try s.mlv("promote", "model", "a@v1", "--to", "production", "-m", "first")
        try s.mlv("alias", "set", "a@v2", "champion")
        try s.mlv("approve", "a@v2", "--for", "production", "-m", "ok")
        usleep(80_000)  // past the window in which fresh directories get no row
        let listings = [["registry"], ["registry", "--json"], ["models"], ["models", "--json"],
                        ["audit", "--at", "2100-01-01", "--json"], ["registry", "a"]]
        func outputs() throws -> [String] { try listings.map { try s.run($0).stdout } }
        func withoutIndex() throws -> [String] {
            for suffix in ["", "-journal"] { unlink(s.path(".mlv/index.sqlite" + suffix)) }
            return try outputs()
        }
        let before = try outputs()
        #expect(try outputs() == before)  // served from the stored rows
        let head = try Scenario.read(s.path(".mlv/refs/model/a/head"))

        try s.mlv("promote", "model", "a@v2", "--to", "production", "-m", "ship")
        let promoted = try outputs()
        #expect(promoted != before && promoted[2].contains("production=v2"), "\(promoted[2])")
        #expect(try withoutIndex() == promoted)

        // The head put back in place, as an editor would: every listing is as before.
        try s.write(".mlv/refs/model/a/head", .file(head, mode: 0o644))
        #expect(try outputs() == before)
        #expect(try withoutIndex() == before)
    }

    /// `mlv audit` over every model (read on 2 threads, written in blocks) prints what
    /// `mlv audit NAME` prints for each model in turn; `--json` the same events in one
    /// array, and `--verify` the same reports.
    @Test func auditOfEveryModelIsEachModelsAuditInTurn() throws {
        let s = try Session(identity: "alice@lab")
        try s.mlv("init")
        for (i, m) in ["a", "a", "b", "c", "c"].enumerated() {
            try s.write("\(m).bin", .random(seed: UInt64(70 + i), count: 2000))
            try s.mlv("add", "model", m, "\(m).bin")
        }
        try s.mlv("promote", "model", "a@v1", "--to", "production", "-m", "first")
        try s.mlv("approve", "c@v2", "--for", "production", "-m", "ok")
        try s.mlv("promote", "model", "c@v2", "--to", "production", "-m", "ship")
        try s.mlv("alias", "set", "a@v2", "champion")
        let names = ["a", "b", "c"]
        let texts = try names.map { try s.run(["audit", $0]).stdout }
        #expect(try s.run(["audit"]).stdout == texts.joined())
        let json = try s.run(["audit", "--json"]).stdout
        let each = try names.map { try s.run(["audit", $0, "--json"]).stdout.dropFirst().dropLast(2) }.filter { !$0.isEmpty }
        #expect(json == "[" + each.joined(separator: ",") + "]\n")
        let verify = try s.run(["audit", "--verify"]).stdout
        let verifies = try names.map { try s.run(["audit", $0, "--verify"]).stdout }
        #expect(verify == verifies.joined())
        #expect(verify.contains("c: 2 events, chain intact"), "\(verify)")
    }
}
