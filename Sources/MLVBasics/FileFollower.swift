#if canImport(Glibc)
import Glibc
#endif

/// Follows what is appended to the regular file behind an output descriptor (`mlv run`'s
/// stdout redirected to a file, say), so a command can write straight into that file, as
/// it would without mlv, while every byte it adds is still read back for the log.
///
/// Reads go through a descriptor of its own (the file reopened read-only through
/// `/proc/self/fd/N`), from the end the file had when following began, so the writer's
/// offset is never touched. An inotify watch on the file makes `wakeDescriptor` readable
/// when it is written to, so a follower can wait in `poll(2)` beside pipes; without one
/// (inotify unavailable or out of watches) the caller polls on a timer.
public final class FileFollower {
    /// The descriptor being followed (not owned).
    public let target: Int32
    /// Readable when the file was modified since `drainWakeups`; nil without inotify.
    public private(set) var wakeDescriptor: Int32?
    private let reader: Int32
    private var offset: Int
    private var closed = false

    /// Follows `fd` when it is a regular file this process could reopen for reading and
    /// every byte written to it lands after its current end: opened for appending, or with
    /// its offset at the end. Nil otherwise (a pipe, a terminal, `/dev/null`, a file written
    /// in the middle), and when `fd` refers to the same file as `sharing`, whose bytes could
    /// not be told apart from this stream's.
    public init?(_ fd: Int32, notSharedWith sharing: Int32) {
        #if os(Linux)
        var st = Glibc.stat(), other = Glibc.stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        if fstat(sharing, &other) == 0, other.st_dev == st.st_dev, other.st_ino == st.st_ino { return nil }
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, flags & O_ACCMODE != O_RDONLY else { return nil }
        let position = lseek(fd, 0, SEEK_CUR)
        guard flags & O_APPEND != 0 || position == off_t(st.st_size) else { return nil }
        let reader = Glibc.open("/proc/self/fd/\(fd)", O_RDONLY | O_CLOEXEC)
        guard reader >= 0 else { return nil }
        var opened = Glibc.stat()
        guard fstat(reader, &opened) == 0, opened.st_dev == st.st_dev, opened.st_ino == st.st_ino else {
            Glibc.close(reader)
            return nil
        }
        target = fd
        self.reader = reader
        offset = Int(st.st_size)
        let notify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        if notify >= 0 {
            if inotify_add_watch(notify, "/proc/self/fd/\(reader)", UInt32(IN_MODIFY)) >= 0 {
                wakeDescriptor = notify
            } else {
                Glibc.close(notify)
            }
        }
        #else
        return nil
        #endif
    }

    deinit { close() }

    /// Reads what was appended since the last read into `buffer`: the byte count, 0 when
    /// nothing new (or the file shrank), -1 on a read error (errno set).
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard !closed else { return 0 }
        while true {
            let n = Glibc.pread(reader, buffer.baseAddress, buffer.count, off_t(offset))
            if n < 0 && errno == EINTR { continue }
            if n > 0 { offset += n }
            return n
        }
    }

    /// Empties the inotify queue, so `wakeDescriptor` waits for the next write.
    public func drainWakeups() {
        guard let fd = wakeDescriptor else { return }
        var scratch = [UInt8](repeating: 0, count: 4096)
        while scratch.withUnsafeMutableBytes({ Glibc.read(fd, $0.baseAddress, $0.count) }) > 0 {}
    }

    /// Closes the follower's own descriptors (not `target`); again is harmless.
    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(reader)
        if let fd = wakeDescriptor { Glibc.close(fd) }
        wakeDescriptor = nil
    }
}
