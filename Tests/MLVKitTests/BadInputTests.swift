import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Every case: a clear error naming the path, ref or name, and nothing recorded (same
/// refs, same pack indexes, clean fsck).
@Suite("add: bad input is refused and nothing is recorded")
struct BadInputTests {
    /// A store with one good version, so "nothing recorded" has something to compare.
    func storeWithOneVersion() throws -> TestRepository {
        let t = try TestRepository()
        try t.write("good", ["a.txt": "a\n"])
        try t.add("good", "good")
        return t
    }

    @Test func missingPath() throws {
        let t = try storeWithOneVersion()
        let before = try t.recorded()
        expectMLVError({ if case .pathNotFound = $0 { true } else { false } }, mentions: ["no-such-dir"]) {
            try t.add("mnist", "no-such-dir")
        }
        expectMLVError({ if case .pathNotFound = $0 { true } else { false } }, mentions: ["missing.py"]) {
            try t.add("good", "good") { $0.code = [t.path("missing.py")] }
        }
        try expectNothingRecorded(t, since: before)
    }

    /// chmod 000 does not stop root, so as root there is nothing to observe here; the
    /// end-to-end suite covers this case by running mlv as an unprivileged user.
    @Test(.disabled(if: getuid() == 0, "running as root: chmod 000 does not block reads"))
    func unreadableFileIsNamedAndNothingPartialIsRecorded() throws {
        let t = try storeWithOneVersion()
        try t.write("data", ["ok.txt": "fine\n", "z/secret.bin": .random(seed: 1, count: 100_000)])
        #expect(chmod(t.path("data/z/secret.bin"), 0) == 0)
        let before = try t.recorded()
        expectMLVError({ if case .unreadable = $0 { true } else { false } }, mentions: ["data/z/secret.bin"]) {
            try t.add("mnist", "data")
        }
        try expectNothingRecorded(t, since: before)

        #expect(chmod(t.path("data/z/secret.bin"), 0o644) == 0)
        #expect(chmod(t.path("data/z"), 0) == 0)
        expectMLVError({ if case .unreadable = $0 { true } else { false } }, mentions: ["data/z"]) {
            try t.add("mnist", "data")
        }
        try expectNothingRecorded(t, since: before)
    }

    @Test func pathInsideTheStore() throws {
        let t = try storeWithOneVersion()
        let before = try t.recorded()
        for inside in [".mlv", ".mlv/refs", ".mlv/config", "good/../.mlv/packs"] {
            expectMLVError({ if case .insideStore = $0 { true } else { false } }, mentions: [inside]) {
                try t.add("mnist", inside)
            }
        }
        // Through a symlink too.
        try t.write("store-link", .symlink(t.repository.storePath))
        expectMLVError({ if case .insideStore = $0 { true } else { false } }, mentions: ["store-link/refs"]) {
            try t.add("mnist", "store-link/refs")
        }
        try expectNothingRecorded(t, since: before)
    }

    @Test(arguments: ["Mnist", "my data", "a..b", "", ".hidden", String(repeating: "x", count: 101), "-dash", "a/b", "ü"])
    func invalidDatasetName(_ name: String) throws {
        let t = try storeWithOneVersion()
        let before = try t.recorded()
        expectMLVError({ if case .invalidName = $0 { true } else { false } }, mentions: ["'\(name)'"]) {
            try t.add(name, "good")
        }
        try expectNothingRecorded(t, since: before)
    }

    @Test func longestNameIsAccepted() throws {
        let t = try storeWithOneVersion()
        let name = String(repeating: "x", count: 100)
        #expect(try t.add(name, "good").version == 1)
        #expect(try t.repository.resolve(name + "@v1").name == name)
    }

    @Test func unknownFromRef() throws {
        let t = try storeWithOneVersion()
        let before = try t.recorded()
        expectMLVError({ if case .unknownRef = $0 { true } else { false } }, mentions: ["'goood@v1'", "good"]) {
            try t.add("derived", "good") { $0.from = ["goood@v1"] }
        }
        expectMLVError({ if case .unknownRef = $0 { true } else { false } }, mentions: ["'good@v9'"]) {
            try t.add("derived", "good") { $0.from = ["raw=good@v9"] }
        }
        expectMLVError({ if case .unknownRef = $0 { true } else { false } }, mentions: ["'good@prod'"]) {
            try t.add("derived", "good") { $0.from = ["good@prod"] }
        }
        expectMLVError({ if case .invalidName = $0 { true } else { false } }, mentions: ["'Raw'"]) {
            try t.add("derived", "good") { $0.from = ["Raw=good@v1"] }
        }
        try expectNothingRecorded(t, since: before)
    }

    struct HostileName: Sendable, CustomTestStringConvertible {
        var label: String
        var files: [String]
        /// What the error message must contain (the escaped form for control characters).
        var mention: String
        var testDescription: String { label }
    }

    static let hostile: [HostileName] = [
        HostileName(label: "backslash", files: ["a\\b.txt"], mention: "a\\b.txt"),
        HostileName(label: "control character", files: ["a\u{1}b"], mention: "a\\u{1}b"),
        HostileName(label: "newline", files: ["line\nbreak"], mention: "line\\u{a}break"),
        HostileName(label: "escape", files: ["\u{1B}[31mred"], mention: "\\u{1b}[31mred"),
        HostileName(label: "DEL", files: ["del\u{7F}"], mention: "del\\u{7f}"),
        HostileName(label: ".MLV", files: [".MLV/x"], mention: ".MLV"),
        HostileName(label: ".mlv nested", files: ["sub/.mlv/config"], mention: "sub/.mlv"),
        HostileName(label: ".mlv with a trailing dot", files: [".mlv./x"], mention: ".mlv."),
        HostileName(label: ".mlv with a trailing space", files: [".mlv /x"], mention: ".mlv "),
        HostileName(label: ".mlv with a zero-width space", files: ["\u{200B}.mlv/x"], mention: "\u{200B}.mlv"),
        HostileName(label: ".mlv with a soft hyphen", files: [".m\u{AD}lv"], mention: ".m\u{AD}lv"),
        HostileName(label: "case collision", files: ["A.txt", "a.txt"], mention: "a.txt"),
        HostileName(label: "case collision of directories", files: ["Train/x", "train/y"], mention: "train"),
        HostileName(label: "NFC and NFD", files: ["caf\u{E9}.txt", "cafe\u{301}.txt"], mention: "caf"),
        HostileName(label: "invalid UTF-8 look-alike U+FFFD", files: ["bad\u{FFFD}name"], mention: "bad"),
    ]

    @Test(arguments: hostile)
    func hostileNamesAreRefusedAtAdd(_ c: HostileName) throws {
        let t = try storeWithOneVersion()
        try t.write("data/fine.txt", "fine\n")
        for f in c.files { try t.write("data/" + f, "x\n") }
        let before = try t.recorded()
        expectMLVError({ $0.isUnsafePath }, mentions: [t.path("data"), c.mention]) {
            try t.add("mnist", "data")
        }
        try expectNothingRecorded(t, since: before)
    }

    /// A file name that is not valid UTF-8 at all (bytes 0xff 0xfe).
    @Test func nonUTF8NameIsRefused() throws {
        let t = try storeWithOneVersion()
        try t.write("data/fine.txt", "fine\n")
        let raw: [UInt8] = Array(t.path("data/").utf8) + [0x66, 0xFF, 0xFE, 0x67]
        let fd = raw.withUnsafeBufferPointer { b -> Int32 in
            var c = b.map { CChar(bitPattern: $0) }
            c.append(0)
            return open(c, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        }
        try #require(fd >= 0)
        close(fd)
        let before = try t.recorded()
        expectMLVError({ $0.isUnsafePath }, mentions: ["UTF-8"]) {
            try t.add("mnist", "data")
        }
        try expectNothingRecorded(t, since: before)
    }

    @Test func namedPipeInsideIsUnsupported() throws {
        let t = try storeWithOneVersion()
        try t.write("data", ["a.txt": "a\n", "sub/pipe": .fifo])
        let before = try t.recorded()
        expectMLVError({ if case .unsupportedFile(_, let what) = $0 { what == "named pipe" } else { false } },
                       mentions: ["data/sub/pipe", "named pipe"]) {
            try t.add("mnist", "data")
        }
        expectMLVError({ if case .unsupportedFile = $0 { true } else { false } }, mentions: ["data/sub/pipe"]) {
            try t.add("mnist", "data/sub/pipe")
        }
        try expectNothingRecorded(t, since: before)
    }

    /// The dataset path itself is a symlink to a directory (`data -> /mnt/big/data`):
    /// either version what it points at or refuse with a message that does not
    /// contradict itself.
    @Test func datasetPathThatIsASymlink() throws {
        let t = try storeWithOneVersion()
        try t.write("real", ["a.txt": "a\n"])
        try t.write("link", .symlink(t.path("real")))
        let before = try t.recorded()
        // The dataset's own path is followed; symlinks inside it are not.
        let r = try t.add("linked", "link")
        #expect(r.files == 1)
        _ = before
    }

    @Test func codeOutsideTheRepositoryOrNotAFile() throws {
        let t = try storeWithOneVersion()
        let outside = try Scenario.makeDirectory(prefix: "mlv-outside")
        defer { Scenario.removeTree(outside) }
        try Scenario.write(.text("x\n"), at: outside + "/prep.py")
        try t.write("src/dir/", .directory)
        let before = try t.recorded()
        expectMLVError({ if case .invalidArgument = $0 { true } else { false } }, mentions: [outside + "/prep.py", "outside"]) {
            try t.add("good", "good") { $0.code = [outside + "/prep.py"] }
        }
        expectMLVError({ if case .invalidArgument = $0 { true } else { false } }, mentions: ["src/dir"]) {
            try t.add("good", "good") { $0.code = [t.path("src/dir")] }
        }
        try expectNothingRecorded(t, since: before)
    }

    @Test func addOutsideAnyStoreIsNotARepository() throws {
        let dir = try Scenario.makeDirectory(prefix: "mlv-norepo")
        defer { Scenario.removeTree(dir) }
        expectMLVError({ if case .notARepository = $0 { true } else { false } }, mentions: [dir, "mlv init"]) {
            try Repository.open(searchingFrom: dir)
        }
        try Repository.initialize(at: dir)
        expectMLVError({ if case .alreadyInitialized = $0 { true } else { false } }, mentions: [dir + "/.mlv"]) {
            try Repository.initialize(at: dir)
        }
    }
}
