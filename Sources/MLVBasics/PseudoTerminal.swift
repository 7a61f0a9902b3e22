#if canImport(Glibc)
import Glibc
#endif

/// A pseudo-terminal pair (`posix_openpt`), for giving a child a terminal as its stdout or
/// stderr while this process reads what it writes from the master side.
///
/// Both descriptors are close-on-exec from the start (another thread may spawn meanwhile).
/// The terminal is put in raw mode (`cfmakeraw`): no output processing, so the bytes read
/// from the master are exactly the bytes the child wrote (no `\n` -> `\r\n`), and no echo.
/// It is not made anyone's controlling terminal: the child keeps this process's, so
/// Ctrl-C and job control behave as without it.
public final class PseudoTerminal: @unchecked Sendable {
    /// The side this process reads: what the child writes arrives here. After the last
    /// holder of the child side closes it, reads return what is left, then fail with EIO.
    public private(set) var master: Int32
    /// The side the child gets (dup2'd onto its stdout or stderr); close it after spawning.
    public private(set) var child: Int32

    /// Opens a pair in raw mode with the given window size (none: the kernel's 0x0).
    /// - Throws: `FileSystemError` naming the call that failed.
    public init(size: WindowSize? = nil) throws {
        guard let functions = ptyFunctions else {
            throw FileSystemError(call: "dlsym posix_openpt", path: "/dev/ptmx", errno: ENOSYS)
        }
        let m = functions.openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard m >= 0 else { throw FileSystemError(call: "posix_openpt", path: "/dev/ptmx", errno: errno) }
        var name = [CChar](repeating: 0, count: 128)
        guard functions.grant(m) == 0, functions.unlock(m) == 0, functions.name(m, &name, name.count) == 0 else {
            let e = errno
            Glibc.close(m)
            throw FileSystemError(call: "unlockpt", path: "/dev/ptmx", errno: e)
        }
        let path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let c = Glibc.open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard c >= 0 else {
            let e = errno
            Glibc.close(m)
            throw FileSystemError(call: "open", path: path, errno: e)
        }
        var mode = termios()
        if tcgetattr(c, &mode) == 0 {
            cfmakeraw(&mode)
            _ = tcsetattr(c, TCSANOW, &mode)
        }
        master = m
        child = c
        if let size { setSize(size) }
    }

    deinit {
        closeMaster()
        closeChild()
    }

    /// Closes the master side (once; later calls do nothing).
    public func closeMaster() {
        if master >= 0 { Glibc.close(master); master = -1 }
    }

    /// Closes this process's copy of the child side (after the child has its own), so
    /// the master reports the end once the child and its descendants close theirs.
    public func closeChild() {
        if child >= 0 { Glibc.close(child); child = -1 }
    }

    /// Sets the window size the child sees (`TIOCSWINSZ` on the master).
    public func setSize(_ size: WindowSize) {
        var w = winsize(ws_row: size.rows, ws_col: size.columns, ws_xpixel: size.xPixels, ws_ypixel: size.yPixels)
        _ = ioctl(master, UInt(TIOCSWINSZ), &w)
    }

    /// A terminal's window size, or nil when `fd` is not a terminal.
    public static func windowSize(of fd: Int32) -> WindowSize? {
        var w = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &w) == 0 else { return nil }
        return WindowSize(rows: w.ws_row, columns: w.ws_col, xPixels: w.ws_xpixel, yPixels: w.ws_ypixel)
    }

    /// Whether `fd` is a terminal (`isatty`).
    public static func isTerminal(_ fd: Int32) -> Bool {
        isatty(fd) == 1
    }
}

/// A terminal's size in characters (and pixels, when the terminal says).
public struct WindowSize: Sendable, Equatable {
    public var rows: UInt16
    public var columns: UInt16
    public var xPixels: UInt16 = 0
    public var yPixels: UInt16 = 0

    public init(rows: UInt16, columns: UInt16, xPixels: UInt16 = 0, yPixels: UInt16 = 0) {
        self.rows = rows; self.columns = columns; self.xPixels = xPixels; self.yPixels = yPixels
    }
}

/// `posix_openpt`, `grantpt`, `unlockpt` and `ptsname_r`, looked up at run time (they are
/// declared only under _XOPEN_SOURCE / _GNU_SOURCE, which the Glibc module does not set).
private let ptyFunctions: (openpt: @convention(c) (Int32) -> Int32, grant: @convention(c) (Int32) -> Int32,
                           unlock: @convention(c) (Int32) -> Int32,
                           name: @convention(c) (Int32, UnsafeMutablePointer<CChar>, Int) -> Int32)? = {
    guard let o = dlsym(nil, "posix_openpt"), let g = dlsym(nil, "grantpt"), let u = dlsym(nil, "unlockpt"),
          let n = dlsym(nil, "ptsname_r") else { return nil }
    typealias FD = @convention(c) (Int32) -> Int32
    return (unsafeBitCast(o, to: FD.self), unsafeBitCast(g, to: FD.self), unsafeBitCast(u, to: FD.self),
            unsafeBitCast(n, to: (@convention(c) (Int32, UnsafeMutablePointer<CChar>, Int) -> Int32).self))
}()
