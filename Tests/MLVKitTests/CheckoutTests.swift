import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("checkout")
struct CheckoutTests {
    @Test func symlinksAreRecordedAsLinksAndNeverFollowed() throws {
        let t = try TestRepository()
        let outside = try Scenario.makeDirectory(prefix: "mlv-outside")
        defer { Scenario.removeTree(outside) }
        try Scenario.write(.random(seed: 9, count: 50_000), at: outside + "/secret.bin")
        try t.write("data", [
            "a.txt": "a\n",
            "inside": .symlink("a.txt"),
            "outside-file": .symlink(outside + "/secret.bin"),
            "outside-dir": .symlink(outside),
            "dangling": .symlink("no/such/file"),
            "up": .symlink("../../.."),
        ])
        let r = try t.add("links", "data")
        #expect(r.files == 1)
        let files = try t.repository.listFiles("links").1
        let links = files.filter { $0.kind == .symlink }
        #expect(links.map(\.path) == ["dangling", "inside", "outside-dir", "outside-file", "up"])
        #expect(links.first { $0.path == "outside-file" }?.target == outside + "/secret.bin")
        #expect(links.allSatisfy { $0.id == nil && $0.size == Int64($0.target!.utf8.count) })
        // The outside file's bytes were never read into the store.
        #expect(!t.repository.objects.contains(SHA256.hash(splitmix64Bytes(seed: 9, count: 50_000))))

        _ = try t.repository.checkout("links", to: t.path("out"))
        #expect(try t.snapshot("out") == t.snapshot("data"))
        // Into an existing, non-empty directory too.
        try t.write("out2/keep.txt", "keep\n")
        _ = try t.repository.checkout("links", to: t.path("out2"))
        var expected = try #require(try t.snapshot("data"))
        expected["keep.txt"] = "keep\n"
        #expect(try t.snapshot("out2") == expected)
    }

    @Test func emptyDirectoriesAndExecutableBitsSurvive() throws {
        let t = try TestRepository()
        try t.write("data", [
            "bin/run.sh": .text("#!/bin/sh\necho hi\n", mode: 0o755),
            "bin/private": .text("p\n", mode: 0o600),
            "empty/": .directory,
            "a/b/c/": .directory,
        ])
        try t.add("d", "data")
        _ = try t.repository.checkout("d", to: t.path("fresh"))
        #expect(try t.snapshot("fresh") == t.snapshot("data"))
        try t.write("existing/other.txt", "x\n")
        _ = try t.repository.checkout("d", to: t.path("existing"))
        var expected = try #require(try t.snapshot("data"))
        expected["other.txt"] = "x\n"
        #expect(try t.snapshot("existing") == expected)
    }

    @Test func subpathAndSplitCheckout() throws {
        let t = try TestRepository()
        try t.write("data", ["train/x.txt": "x\n", "train/deep/y.txt": "y\n", "eval/z.txt": "z\n"])
        try t.add("d", "data") { $0.splits = ["train": "train"] }
        _ = try t.repository.checkout("d", subpath: "train/deep", to: t.path("sub"))
        #expect(try t.snapshot("sub") == ["y.txt": "y\n"])
        _ = try t.repository.checkout("d#train", to: t.path("split"))
        #expect(try t.snapshot("split") == ["x.txt": "x\n", "deep": .directory, "deep/y.txt": "y\n"])
        expectMLVError({ if case .notInVersion = $0 { true } else { false } }, mentions: ["nope", "d@v1"]) {
            _ = try t.repository.checkout("d", subpath: "nope", to: t.path("none"))
        }
        #expect(Scenario.lstatOrNil(t.path("none")) == nil)
    }

    @Test func conflictingFileIsRefusedThenOverwrittenWithForce() throws {
        let t = try TestRepository()
        try t.write("data", ["a.txt": "version one\n", "b.txt": "same\n"])
        try t.add("d", "data")
        try t.write("target", ["a.txt": "my local edit\n", "b.txt": "same\n", "mine.txt": "mine\n"])
        let before = try t.snapshot("target")
        expectMLVError({ if case .checkoutConflict(_, let paths) = $0 { paths == ["a.txt"] } else { false } },
                       mentions: ["a.txt", "--force"]) {
            _ = try t.repository.checkout("d", to: t.path("target"))
        }
        #expect(try t.snapshot("target") == before)

        _ = try t.repository.checkout("d", to: t.path("target"), force: true)
        #expect(try t.snapshot("target") == ["a.txt": "version one\n", "b.txt": "same\n", "mine.txt": "mine\n"])
        // Checking out again over identical files is no conflict.
        _ = try t.repository.checkout("d", to: t.path("target"))
    }

    @Test func aDirectoryWhereAFileGoesAndAFileWhereADirectoryGoes() throws {
        let t = try TestRepository()
        try t.write("data", ["a": "file a\n", "b/x.txt": "x\n"])
        try t.add("d", "data")
        try t.write("target", ["a/inner.txt": "in a dir\n", "b": "a file named b\n"])
        let before = try t.snapshot("target")
        let e = expectMLVError({ if case .checkoutConflict = $0 { true } else { false } }) {
            _ = try t.repository.checkout("d", to: t.path("target"))
        }
        // "b" is where a directory goes and a file is; "b/x.txt" cannot be placed under it.
        if case .checkoutConflict(_, let paths)? = e { #expect(Set(paths) == ["a", "b", "b/x.txt"]) }
        #expect(try t.snapshot("target") == before)
        _ = try t.repository.checkout("d", to: t.path("target"), force: true)
        #expect(try t.snapshot("target") == ["a": "file a\n", "b": .directory, "b/x.txt": "x\n"])
    }

    /// target/train is a symlink to a directory elsewhere: checkout must never write
    /// through it. Without --force it is a conflict; with --force the link is replaced
    /// by a real directory and the elsewhere directory is untouched.
    @Test func neverWritesThroughASymlinkInTheTarget() throws {
        let t = try TestRepository()
        let elsewhere = try Scenario.makeDirectory(prefix: "mlv-elsewhere")
        defer { Scenario.removeTree(elsewhere) }
        try Scenario.write(.text("victim\n"), at: elsewhere + "/x.txt")
        try t.write("data", ["train/x.txt": "train x\n", "train/new.txt": "new\n"])
        try t.add("d", "data")
        try t.write("target", ["train": .symlink(elsewhere), "other.txt": "o\n"])
        let elsewhereBefore = try Scenario.snapshot(elsewhere)
        let targetBefore = try t.snapshot("target")

        expectMLVError({ if case .checkoutConflict = $0 { true } else { false } }, mentions: ["train/"]) {
            _ = try t.repository.checkout("d", to: t.path("target"))
        }
        #expect(try Scenario.snapshot(elsewhere) == elsewhereBefore)
        #expect(try t.snapshot("target") == targetBefore)

        _ = try t.repository.checkout("d", to: t.path("target"), force: true)
        #expect(try Scenario.snapshot(elsewhere) == elsewhereBefore)
        #expect(try t.snapshot("target") == [
            "other.txt": "o\n", "train": .directory, "train/x.txt": "train x\n", "train/new.txt": "new\n",
        ])
    }

    /// The same, for a version whose directory holds only empty directories: there is no
    /// file below the link to report as a conflict, so the empty directories themselves
    /// must not be created through it.
    @Test func neverCreatesEmptyDirectoriesThroughASymlinkInTheTarget() throws {
        let t = try TestRepository()
        let elsewhere = try Scenario.makeDirectory(prefix: "mlv-elsewhere")
        defer { Scenario.removeTree(elsewhere) }
        try t.write("data", ["outer/inner/": .directory, "f.txt": "f\n"])
        try t.add("d", "data")
        try t.write("target", ["outer": .symlink(elsewhere), "mine.txt": "m\n"])
        _ = try? t.repository.checkout("d", to: t.path("target"))
        let afterPlain = try Scenario.snapshot(elsewhere)
        #expect(afterPlain == [:])
        _ = try? t.repository.checkout("d", to: t.path("target"), force: true)
        let afterForce = try Scenario.snapshot(elsewhere)
        let outerKind = Scenario.lstatOrNil(t.path("target/outer")).map { $0.st_mode & S_IFMT }
        #expect(afterForce == [:])
        #expect(outerKind == S_IFDIR)
    }

    /// A version's empty directory where the target has a file: a conflict like any
    /// other, and with --force the directory replaces the file.
    @Test func aFileWhereAnEmptyDirectoryGoes() throws {
        let t = try TestRepository()
        try t.write("data", ["a.txt": "a\n", "e/": .directory])
        try t.add("d", "data")
        try t.write("target", ["e": "a file named e\n"])
        let result = Result { try t.repository.checkout("d", to: t.path("target")) }
        let after = try t.snapshot("target")
        #expect(throws: MLVError.self) { try result.get() }
        #expect(after?["e"] == "a file named e\n")
        _ = try? t.repository.checkout("d", to: t.path("target"), force: true)
        let forced = try t.snapshot("target")
        #expect(forced == ["a.txt": "a\n", "e": .directory])
    }

    @Test func targetThatIsAFileOrInsideTheStoreIsRefused() throws {
        let t = try TestRepository()
        try t.write("data", ["a.txt": "a\n"])
        try t.add("d", "data")
        try t.write("file", "not a dir\n")
        expectMLVError({ if case .invalidArgument = $0 { true } else { false } }, mentions: ["file"]) {
            _ = try t.repository.checkout("d", to: t.path("file"))
        }
        #expect(try t.read("file") == Array("not a dir\n".utf8))
        expectMLVError({ if case .insideStore = $0 { true } else { false } }, mentions: [".mlv"]) {
            _ = try t.repository.checkout("d", to: t.repository.storePath + "/refs/x")
        }
        #expect(t.repository.fsck().isClean)
    }

    @Test func checkoutOfAnUnknownRefWritesNothing() throws {
        let t = try TestRepository()
        try t.write("data", ["a.txt": "a\n"])
        try t.add("d", "data")
        expectMLVError({ if case .unknownRef = $0 { true } else { false } }, mentions: ["d@v7"]) {
            _ = try t.repository.checkout("d@v7", to: t.path("out"))
        }
        #expect(Scenario.lstatOrNil(t.path("out")) == nil)
    }
}

/// Trees written by someone other than this mlv (a hostile or buggy writer to a shared
/// store): checkout must refuse them before writing anything.
@Suite("checkout of hostile stored trees")
struct HostileTreeTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var label: String
        var names: [String]
        var nested: Bool
        var mention: String
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "dot-dot", names: [".."], nested: false, mention: "'..'"),
        Case(label: "dot-dot below a directory", names: [".."], nested: true, mention: "'..'"),
        Case(label: "dot", names: ["."], nested: false, mention: "'.'"),
        Case(label: "absolute path as a name", names: ["/etc/passwd"], nested: false, mention: "/etc/passwd"),
        Case(label: "slash inside a name", names: ["a/../../x"], nested: true, mention: "a/../../x"),
        Case(label: ".mlv", names: [".mlv"], nested: false, mention: ".mlv"),
        Case(label: ".MLV", names: [".MLV"], nested: true, mention: ".MLV"),
        Case(label: ".mlv with a trailing dot", names: [".mlv."], nested: false, mention: ".mlv."),
        Case(label: ".mlv with a zero-width space", names: [".ml\u{200B}v"], nested: false, mention: "mlv"),
        Case(label: "empty name", names: [""], nested: false, mention: "empty"),
        Case(label: "NUL", names: ["a\u{0}b"], nested: false, mention: "\\u{0}"),
        Case(label: "newline", names: ["a\nb"], nested: true, mention: "\\u{a}"),
        Case(label: "backslash", names: ["..\\..\\x"], nested: false, mention: "backslash"),
        Case(label: "case collision", names: ["A.txt", "a.txt"], nested: false, mention: "a.txt"),
        Case(label: "NFC/NFD collision", names: ["caf\u{E9}", "cafe\u{301}"], nested: true, mention: "caf"),
    ]

    @Test(arguments: cases)
    func checkoutRefusesAndWritesNothing(_ c: Case) throws {
        let t = try TestRepository()
        let payload = Array("payload\n".utf8)
        let bad = Tree(entries: c.names.map { fileEntry($0, payload) } + [fileEntry("ok.txt", payload)])
        let root = c.nested ? Tree(entries: [dirEntry("sub", bad), fileEntry("top.txt", payload)]) : bad
        try commitHandMadeVersion(t.repository, name: "evil", root: root, subtrees: c.nested ? [bad] : [], blobs: [payload])
        let parentBefore = try Scenario.names(in: t.directory)

        for target in ["absent", "present"] {
            if target == "present" { try t.write("present/mine.txt", "mine\n") }
            let before = try t.snapshot(target)
            for force in [false, true] {
                expectMLVError({ $0.isDamage || $0.isUnsafePath }, mentions: [c.mention]) {
                    _ = try t.repository.checkout("evil", to: t.path(target), force: force)
                }
                #expect(try t.snapshot(target) == before)
            }
        }
        #expect(try Scenario.names(in: t.directory) == (parentBefore + ["present"]).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        // Listing is refused the same way, and fsck names the tree.
        #expect(throws: MLVError.self) { try t.repository.listFiles("evil") }
        let report = t.repository.fsck()
        #expect(!report.isClean)
        #expect(report.problems.contains { $0.subject == bad.id.hex })
    }

    /// "Symlink then a file under it": a stored symlink `Link` to a directory elsewhere and
    /// a directory `link` holding a file. On a case-insensitive file system the file would
    /// land through the symlink; the names collide, so the checkout is refused before
    /// anything is written, there or in the target.
    @Test func aSymlinkThenAFileUnderTheSameNameIsRefused() throws {
        let t = try TestRepository()
        try t.write("elsewhere", ["keep.txt": "keep\n"])
        let outside = try t.snapshot("elsewhere")
        let payload = Array("payload\n".utf8)
        let inner = Tree(entries: [fileEntry("x.txt", payload)])
        let link = Tree.Entry(name: "Link", kind: .symlink, mode: 0o777, size: Int64(t.path("elsewhere").utf8.count), id: nil,
                              target: t.path("elsewhere"))
        let root = Tree(entries: [link, dirEntry("link", inner)])
        try commitHandMadeVersion(t.repository, name: "evil", root: root, subtrees: [inner], blobs: [payload])
        expectMLVError({ $0.isDamage || $0.isUnsafePath }, mentions: ["link"]) {
            _ = try t.repository.checkout("evil", to: t.path("target"))
        }
        #expect(!FS.exists(t.path("target")))
        #expect(try t.snapshot("elsewhere") == outside)
    }

    /// A stored mode with setuid, setgid or sticky bits must not come back as such: a
    /// shared store must not be able to plant a setuid program in a checkout.
    @Test(arguments: [UInt32(0o4755), 0o2755, 0o1755, 0o6777])
    func checkoutDropsSpecialModeBits(_ mode: UInt32) throws {
        let t = try TestRepository()
        let payload = Array("#!/bin/sh\n".utf8)
        try commitHandMadeVersion(t.repository, name: "suid", root: Tree(entries: [fileEntry("tool", payload, mode: mode)]),
                                  blobs: [payload])
        _ = try? t.repository.checkout("suid", to: t.path("out"))
        let st = Scenario.lstatOrNil(t.path("out/tool"))
        #expect(st.map { $0.st_mode & 0o7000 } == 0)
    }
}
