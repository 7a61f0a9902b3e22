import ArgumentParser
import MLVBasics
@testable import MLVCommands
import MLVKit
import MLVStore
import Testing

/// The one place exit codes are mapped (`ExitCode+MLV.swift`), checked case by case
/// against the table in its documentation and `docs/cli.md`.
@Suite("exit code mapping")
struct ExitCodeMappingTests {
    static let id = ObjectID(digest: [UInt8](repeating: 0xAB, count: 32))
    static let fsError = FileSystemError(call: "open", path: "/x", errno: 13)

    struct Case: Sendable, CustomTestStringConvertible {
        var error: MLVError
        var code: Int32
        var testDescription: String { "\(code): \(error)" }
    }

    static let cases: [Case] = [
        Case(error: .notARepository(searchedFrom: "/w"), code: 2),
        Case(error: .pathNotFound("p"), code: 2),
        Case(error: .unknownRef("x@v1", suggestions: []), code: 2),
        Case(error: .unknownSplit(ref: "x@v1", split: "s", known: []), code: 2),
        Case(error: .notInVersion(ref: "x@v1", path: "p"), code: 2),
        Case(error: .checkoutConflict(target: "t", paths: ["a"]), code: 3),
        Case(error: .store(.refChanged(ref: "x@prod", expected: "a", found: "b")), code: 3),
        Case(error: .store(.locked("held")), code: 3),
        Case(error: .damaged("bad"), code: 4),
        Case(error: .store(.missingObject(id)), code: 4),
        Case(error: .store(.corruptObject(id, pack: "p", reason: "r")), code: 4),
        Case(error: .store(.corruptFile(path: "p", reason: "r")), code: 4),
        Case(error: .store(.badRef(path: "p", reason: "r")), code: 4),
        Case(error: .store(.newerFormat(path: "p", found: 2, supported: 1)), code: 5),
        Case(error: .invalidName("X", reason: "r"), code: 5),
        Case(error: .invalidArgument("a"), code: 5),
        Case(error: .insideStore(path: "p"), code: 5),
        Case(error: .unsupportedFile(path: "p", what: "named pipe"), code: 5),
        Case(error: .unsafePath(path: "p", reason: "r"), code: 5),
        Case(error: .ambiguousPrefix("abcdef", candidates: []), code: 5),
        Case(error: .alreadyInitialized(path: "p"), code: 5),
        Case(error: .unreadable(path: "p", cause: fsError), code: 5),
        Case(error: .model("m"), code: 5),
        Case(error: .ambiguousRef("x@v1", candidates: []), code: 5),
        Case(error: .refused("approvals missing"), code: 5),
        Case(error: .notFound("no stage 'x'"), code: 2),
        Case(error: .registryChanged(ref: "x@production"), code: 3),
        Case(error: .store(.io(fsError)), code: 1),
    ]

    @Test(arguments: cases)
    func libraryErrorMapsToItsDocumentedCode(_ c: Case) {
        #expect(MLVExit.code(for: c.error) == c.code)
    }

    @Test func documentedConstants() {
        #expect([MLVExit.success, MLVExit.checkFailed, MLVExit.notFound, MLVExit.conflict, MLVExit.damaged,
                 MLVExit.refused, MLVExit.usage] == [0, 1, 2, 3, 4, 5, 64])
    }

    @Test(arguments: [
        ["add", "dataset"], ["add", "dataset", "x"], ["checkout", "x"], ["gc", "--grace", "soon"], ["gc", "--grace", "-1d"],
        ["hash"], ["frobnicate"], ["promote", "model"], ["promote", "model", "x@v1"], ["approve", "x@v1", "-m", "m"],
        ["stage", "add", "x", "--approvals", "-1"], ["status"], ["init", "--avg-chunk", "big"],
    ])
    func usageErrorsAreSixtyFour(_ arguments: [String]) {
        do {
            _ = try MLV.parseAsRoot(arguments)
            Issue.record("parsed: \(arguments)")
        } catch {
            #expect(MLV.exitCode(for: error).rawValue == MLVExit.usage)
        }
    }

    @Test func addParsesRepeatedOptions() throws {
        let command = try #require(try MLV.parseAsRoot([
            "add", "dataset", "mnist", "data", "-m", "msg", "--from", "raw@v1", "--from", "source=raw@v2",
            "--split", "train=train/", "--meta", "k=v=w", "--code", "a.py", "--code", "b.py",
        ]) as? AddDataset)
        #expect(command.name == "mnist" && command.path == "data" && command.version.message == "msg")
        #expect(command.version.from == ["raw@v1", "source=raw@v2"])
        #expect(command.version.code == ["a.py", "b.py"])
        #expect(try keyValuePairs(command.version.meta, "--meta") == ["k": "v=w"])
        #expect(try keyValuePairs(command.splits, "--split") == ["train": "train/"])
        #expect(throws: ValidationError.self) { try keyValuePairs(["k=1", "k=2"], "--meta") }
        #expect(throws: ValidationError.self) { try keyValuePairs(["=v"], "--meta") }
        #expect(throws: ValidationError.self) { try keyValuePairs(["novalue"], "--meta") }
    }

    @Test func humanBytes() {
        #expect(MLVCommands.humanBytes(0) == "0 B")
        #expect(MLVCommands.humanBytes(1023) == "1023 B")
        #expect(MLVCommands.humanBytes(1536) == "1.5 KiB")
        #expect(MLVCommands.humanBytes(12 << 20) == "12.0 MiB")
    }

    @Test func graceDurations() {
        #expect(parseDuration("0") == 0)
        #expect(parseDuration("90") == 90)
        #expect(parseDuration("30m") == 1800)
        #expect(parseDuration("12h") == 43200)
        #expect(parseDuration("3d") == 259_200)
        #expect(parseDuration("2w") == 1_209_600)
        for bad in ["", "w", "-1d", "1y", "1.5h", "soon"] { #expect(parseDuration(bad) == nil, "\(bad)") }
    }
}
