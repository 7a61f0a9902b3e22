@testable import MLVBasics
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct FileFollowerTests {
    func read(_ f: FileFollower) -> String {
        var buffer = [UInt8](repeating: 0, count: 7)
        var out = ""
        while true {
            let n = buffer.withUnsafeMutableBytes { f.read(into: $0) }
            guard n > 0 else { return out }
            out += String(decoding: buffer[0..<n], as: UTF8.self)
        }
    }

    /// What is written through the followed descriptor is read back once, in pieces of
    /// the caller's buffer; the wake descriptor turns readable on a write and quiet once
    /// drained; the writer's offset is not moved by the reads.
    @Test func readsWhatIsAppendedThroughTheDescriptor() throws {
        let t = try TemporaryDirectory()
        let path = t.path + "/f"
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer { Glibc.close(fd) }
        let null = Glibc.open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { Glibc.close(null) }
        let f = try #require(FileFollower(fd, notSharedWith: null))
        #expect(read(f) == "")
        _ = Pipes.writeAll(fd, Array("hello, world\n".utf8).withUnsafeBytes { UnsafeRawBufferPointer($0) })
        if let wake = f.wakeDescriptor {
            #expect(Pipes.waitReadable([wake], timeoutMilliseconds: 1000) == [wake])
            f.drainWakeups()
            #expect(Pipes.waitReadable([wake], timeoutMilliseconds: 0).isEmpty)
        }
        #expect(read(f) == "hello, world\n")
        #expect(lseek(fd, 0, SEEK_CUR) == 13)
        "more".withCString { _ = Glibc.write(fd, $0, 4) }
        #expect(read(f) == "more")
    }

    /// Not followed: a pipe, /dev/null, a read-only descriptor, a file written in its
    /// middle, and a file both streams share.
    @Test func onlyAFileWrittenAtItsEndAndNotSharedIsFollowed() throws {
        let t = try TemporaryDirectory()
        let path = t.path + "/f"
        try Scenario.write(.text("old\n"), at: path)
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { Glibc.close(fds[0]); Glibc.close(fds[1]) }
        let null = Glibc.open("/dev/null", O_WRONLY | O_CLOEXEC)
        let readOnly = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        let middle = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        let append = Glibc.open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        let again = Glibc.open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        defer { for fd in [null, readOnly, middle, append, again] { Glibc.close(fd) } }
        #expect(FileFollower(fds[1], notSharedWith: null) == nil)
        #expect(FileFollower(null, notSharedWith: fds[1]) == nil)
        #expect(FileFollower(readOnly, notSharedWith: null) == nil)
        #expect(FileFollower(middle, notSharedWith: null) == nil)
        #expect(FileFollower(append, notSharedWith: again) == nil, "the same file on both streams")
        let f = try #require(FileFollower(append, notSharedWith: null))
        #expect(read(f) == "", "what the file held before is not followed")
        "new\n".withCString { _ = Glibc.write(append, $0, 4) }
        #expect(read(f) == "new\n")
    }
}
