import MLVBasics
import MLVTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("FS")
struct FSTests {
    @Test("atomicWrite creates, then replaces, and leaves no temp file", arguments: [true, false])
    func atomicWrite(durable: Bool) throws {
        let dir = try TemporaryDirectory()
        let path = dir.appending("config.json")
        try FS.atomicWrite(path, Array("first".utf8), durable: durable)
        #expect(try FS.readFile(path) == Array("first".utf8))
        let big = splitmix64Bytes(seed: 1, count: 300_000)
        try FS.atomicWrite(path, big, durable: durable)
        #expect(try FS.readFile(path) == big)
        try FS.atomicWrite(path, [], durable: durable)
        #expect(try FS.readFile(path) == [])
        #expect(try dir.list() == ["config.json"])
    }

    /// A failed rename must not close the temp file's descriptor a second time: by then
    /// the number may belong to a file another thread opened (the kernel hands out the
    /// lowest free number, so the hook's own open below gets it).
    @Test("atomicWrite closes its descriptor once when the rename fails", arguments: [true, false])
    func atomicWriteFailedRenameClosesOnce(durable: Bool) throws {
        let dir = try TemporaryDirectory()
        let path = dir.appending("config.json")
        let bystander = dir.appending("bystander")
        try FS.atomicWrite(bystander, Array("other".utf8), durable: false)
        let opened = Locked<[Int32]>([])
        let thrown = FaultInjection.withHook({ op, p in
            guard op == .rename, p == path else { return nil }
            let fd = Glibc.open(bystander, O_RDONLY | O_CLOEXEC)
            opened.withLock { $0.append(fd) }
            return EIO
        }) {
            do { try FS.atomicWrite(path, Array("new".utf8), durable: durable); return false } catch { return true }
        }
        #expect(thrown)
        let fds = opened.withLock { $0 }
        #expect(fds.count == 1)
        for fd in fds {
            #expect(fcntl(fd, F_GETFD) != -1, "the bystander's descriptor \(fd) was closed by atomicWrite")
            Glibc.close(fd)
        }
        #expect(try dir.list() == ["bystander"], "no temp file is left")
    }

    @Test("copyRange appends a range of one file to another, in the kernel or through a buffer", arguments: [0, O_APPEND])
    func copyRange(targetFlags: Int32) throws {
        let dir = try TemporaryDirectory()
        let bytes = splitmix64Bytes(seed: 2, count: 3 << 20)
        try FS.atomicWrite(dir.appending("source"), bytes, durable: false)
        let source = try FS.open(dir.appending("source"), O_RDONLY)
        defer { FS.close(source) }
        // sendfile(2) refuses an O_APPEND target, which takes the pread/write fallback.
        let target = try FS.open(dir.appending("target"), O_WRONLY | O_CREAT | targetFlags)
        defer { FS.close(target) }
        try FS.writeAll(target, [1, 2], path: "target")
        #expect(try FS.copyRange(from: source, sourcePath: "source", offset: 5, length: (2 << 20) + 3, to: target, targetPath: "target") == (2 << 20) + 3)
        // A range running past the end of the source copies what there is.
        #expect(try FS.copyRange(from: source, sourcePath: "source", offset: (3 << 20) - 4, length: 100, to: target, targetPath: "target") == 4)
        #expect(try FS.readFile(dir.appending("target")) == [1, 2] + bytes[5..<((2 << 20) + 8)] + bytes[((3 << 20) - 4)...])
    }

    @Test("a failed atomicWrite leaves the old content and no temp file")
    func atomicWriteFailure() throws {
        let dir = try TemporaryDirectory()
        let path = dir.appending("ref")
        try FS.atomicWrite(path, Array("old".utf8))
        // Writing into a directory that is not there fails at open, before anything changes.
        #expect(throws: FileSystemError.self) { try FS.atomicWrite(dir.appending("missing/ref"), [1]) }
        // Renaming over a directory fails after the temp file was written: it must be removed.
        try FS.makeDirectories(dir.appending("taken/inner"))
        let error = #expect(throws: FileSystemError.self) { try FS.atomicWrite(dir.appending("taken"), Array("new".utf8)) }
        #expect(error?.call == "rename")
        #expect(error?.path == dir.appending("taken"))
        #expect(try FS.readFile(path) == Array("old".utf8))
        #expect(try dir.list() == ["ref", "taken"])
    }

    @Test("createExclusive creates once, then returns false and changes nothing")
    func createExclusive() throws {
        let dir = try TemporaryDirectory()
        let path = dir.appending("1")
        #expect(try FS.createExclusive(path, Array("first\n".utf8)))
        #expect(try FS.createExclusive(path, Array("second\n".utf8)) == false)
        #expect(try FS.readFile(path) == Array("first\n".utf8))
        #expect(try dir.list() == ["1"], "no temp file is left either way")
    }

    @Test("readFile reads whole files; readFileIfExists gives nil for a missing one")
    func readFile() throws {
        let dir = try TemporaryDirectory()
        for size in [0, 1, 4095, 4096, 4097, 1 << 20] {
            let bytes = splitmix64Bytes(seed: UInt64(size), count: size)
            try FS.atomicWrite(dir.appending("f"), bytes, durable: false)
            let same = try FS.readFile(dir.appending("f")) == bytes
            #expect(same, "\(size) bytes")
        }
        #expect(try FS.readFileIfExists(dir.appending("nope")) == nil)
        let error = #expect(throws: FileSystemError.self) { try FS.readFile(dir.appending("nope")) }
        #expect(error?.isNotFound == true)
        #expect(error.map { "\($0)".contains(dir.appending("nope")) } == true)
    }

    @Test("path helpers")
    func paths() {
        #expect(FS.parent(of: "/a/b/c") == "/a/b")
        #expect(FS.parent(of: "/a") == "/")
        #expect(FS.parent(of: "a") == ".")
        #expect(FS.baseName(of: "/a/b/c.txt") == "c.txt")
        #expect(FS.baseName(of: "c") == "c")
        #expect(FS.absolute("b/../c/./d", relativeTo: "/x/y") == "/x/y/c/d")
        #expect(FS.absolute("/../..//a//") == "/a")
        let temp = FS.temporaryName(for: "/d/refs/main")
        #expect(temp.hasPrefix("/d/refs/.main.tmp-\(getpid())-"))
        #expect(FS.temporaryName(for: "/d/refs/main") != temp)
    }

    @Test("makeDirectories and removeTree")
    func directories() throws {
        let dir = try TemporaryDirectory()
        let deep = dir.appending("a/b/c")
        try FS.makeDirectories(deep)
        try FS.makeDirectories(deep)
        #expect(FS.isDirectory(deep))
        try FS.atomicWrite(deep + "/f", [1, 2, 3], durable: false)
        try FS.symlink(target: "f", at: deep + "/link")
        #expect(try FS.readLink(deep + "/link") == "f")
        try FS.removeTree(dir.appending("a"))
        #expect(!FS.exists(dir.appending("a")))
        try FS.removeTree(dir.appending("a"))
    }
}
