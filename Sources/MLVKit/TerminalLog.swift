import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// Turns a command's stdout and stderr bytes into the terminal log format:
/// `<RFC 3339 UTC time with milliseconds> <out|err> <the line, without its newline>\n`.
///
/// A line ends at `\n`, at `\r\n`, or at a lone `\r` (a progress bar redrawing its line
/// becomes one log line per redraw). A line's time is when its first byte arrived. A
/// line longer than `maxLine` bytes (binary output without newlines) is cut every
/// `maxLine` bytes (wherever the reads end), so memory stays bounded whatever the
/// command prints. Bytes are copied as they are:
/// invalid UTF-8 stays invalid. `finish` writes a final partial line of each stream.
public struct TerminalLogFormatter: Sendable {
    /// Which stream bytes came from.
    public enum Stream: Int, Sendable {
        case out = 0, err = 1
    }

    public static let maxLine = 1 << 20
    private var pending: [[UInt8]] = [[], []]
    private var pendingTime: [[UInt8]?] = [nil, nil]
    private var afterCR = [false, false]
    private let maxLine: Int
    /// Where one call's lines are assembled with plain copies (no per-line array
    /// appends: a chatty command prints a million lines a second).
    private let scratch = ScratchBuffer()

    public init(maxLine: Int = TerminalLogFormatter.maxLine) {
        self.maxLine = maxLine
    }

    /// Appends the log lines completed by `bytes` (which arrived at `time`) to `out`.
    public mutating func feed(_ stream: Stream, _ bytes: UnsafeRawBufferPointer, time: [UInt8], into out: inout [UInt8]) {
        scratch.count = 0
        time.withUnsafeBytes { t in feedLines(stream.rawValue, bytes, time: t) }
        out.append(contentsOf: scratch.bytes)
    }

    private mutating func feedLines(_ s: Int, _ bytes: UnsafeRawBufferPointer, time: UnsafeRawBufferPointer) {
        let count = bytes.count
        guard count > 0, let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var at = 0
        if afterCR[s] {
            afterCR[s] = false
            if base[0] == 10 { at = 1 }
        }
        var start = at
        while at < count {
            let b = base[at]
            if b > 13 || (b != 10 && b != 13) { at += 1; continue }
            emit(s, UnsafeRawBufferPointer(start: base + start, count: at - start), time: time)
            if b == 13 {
                if at + 1 < count {
                    if base[at + 1] == 10 { at += 1 }
                } else {
                    afterCR[s] = true
                }
            }
            at += 1
            start = at
        }
        if start < count {
            if pendingTime[s] == nil { pendingTime[s] = Array(time) }
            var rest = start
            while count - rest + pending[s].count > maxLine {
                let take = maxLine - pending[s].count
                pending[s].append(contentsOf: UnsafeRawBufferPointer(start: base + rest, count: take))
                flushPending(s)
                pendingTime[s] = Array(time)
                rest += take
            }
            if rest < count { pending[s].append(contentsOf: UnsafeRawBufferPointer(start: base + rest, count: count - rest)) }
            else { pendingTime[s] = nil }
        }
    }

    /// Appends each stream's unfinished last line, if any, stamped with the time its
    /// first byte arrived (or `time` when none is known).
    public mutating func finish(time: [UInt8], into out: inout [UInt8]) {
        scratch.count = 0
        for s in 0..<2 where !pending[s].isEmpty {
            if pendingTime[s] == nil { pendingTime[s] = time }
            flushPending(s)
        }
        out.append(contentsOf: scratch.bytes)
    }

    /// `<time> <out|err> ` into the scratch buffer.
    @inline(__always)
    private func prefix(_ s: Int, _ time: UnsafeRawBufferPointer, room: Int) {
        scratch.reserve(time.count + 5 + room)
        scratch.append(time)
        // " out " / " err "
        let tag: (UInt8, UInt8, UInt8, UInt8, UInt8) = s == 0 ? (32, 111, 117, 116, 32) : (32, 101, 114, 114, 32)
        withUnsafeBytes(of: tag) { scratch.append($0) }
    }

    private mutating func flushPending(_ s: Int) {
        pendingTime[s]!.withUnsafeBytes { t in prefix(s, t, room: pending[s].count + 1) }
        pending[s].withUnsafeBytes { scratch.append($0) }
        scratch.appendByte(10)
        pending[s].removeAll(keepingCapacity: true)
        pendingTime[s] = nil
    }

    /// Writes a line that ends in this read: the unfinished part already pending, then
    /// `line`; cut into pieces of `maxLine` bytes when longer (each stamped with the time
    /// its first byte arrived), so where lines are cut does not depend on the reads.
    @inline(__always)
    private mutating func emit(_ s: Int, _ line: UnsafeRawBufferPointer, time: UnsafeRawBufferPointer) {
        var line = line
        if !pending[s].isEmpty {
            if pending[s].count + line.count > maxLine {
                let take = maxLine - pending[s].count
                pending[s].append(contentsOf: UnsafeRawBufferPointer(rebasing: line[..<take]))
                flushPending(s)
                line = UnsafeRawBufferPointer(rebasing: line[take...])
            } else {
                pendingTime[s]!.withUnsafeBytes { prefix(s, $0, room: pending[s].count + line.count + 1) }
                pending[s].withUnsafeBytes { scratch.append($0) }
                pending[s].removeAll(keepingCapacity: true)
                pendingTime[s] = nil
                scratch.append(line)
                scratch.appendByte(10)
                return
            }
        }
        while line.count > maxLine {
            prefix(s, time, room: maxLine + 1)
            scratch.append(UnsafeRawBufferPointer(rebasing: line[..<maxLine]))
            scratch.appendByte(10)
            line = UnsafeRawBufferPointer(rebasing: line[maxLine...])
        }
        prefix(s, time, room: line.count + 1)
        scratch.append(line)
        scratch.appendByte(10)
    }
}

/// A growable byte buffer written with plain copies; its bytes are valid until the
/// next write.
final class ScratchBuffer: @unchecked Sendable {
    private(set) var base: UnsafeMutableRawPointer
    var count = 0
    private var capacity: Int

    init(capacity: Int = 1 << 16) {
        self.capacity = capacity
        base = malloc(capacity)!
    }

    deinit { free(base) }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    @inline(__always)
    func reserve(_ extra: Int) {
        if count + extra > capacity { grow(count + extra) }
    }

    private func grow(_ needed: Int) {
        while capacity < needed { capacity *= 2 }
        base = realloc(base, capacity)!
    }

    @inline(__always)
    func append(_ bytes: UnsafeRawBufferPointer) {
        guard let from = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        memcpy(base + count, from, bytes.count)
        count += bytes.count
    }

    @inline(__always)
    func appendByte(_ byte: UInt8) {
        reserve(1)
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count += 1
    }
}

/// The compact terminal log (`mlv.log/2`, docs/design.md "Terminal log"): the magic
/// line `mlv.log/2\n`, then one frame per read from the command's stdout or stderr:
/// a varint `zigzag(ms - previous frame's ms) << 1 | stream` (0 out, 1 err; the first
/// frame's ms is relative to 0, so absolute), a 4-byte little-endian payload length, and
/// the bytes exactly as read. Lines are cut and stamped when the log is read
/// (`TerminalLogReader`), which renders exactly the `mlv.log/1` text below, so the hot
/// path copies bytes and never scans them.
///
/// `mlv.log/1` (no magic; what mlv wrote before, and what `mlv log run` still writes):
/// `<RFC 3339 UTC time with milliseconds> <out|err> <the line, without its newline>\n`.
public enum TerminalLog {
    /// The first line of an `mlv.log/2` log.
    public static let magic: [UInt8] = Array("mlv.log/2\n".utf8)
    /// Times past the year 9999 (ms since the epoch) are damage, not times.
    static let timeLimit: Int64 = 253_402_300_800_000
    /// The largest payload one frame holds.
    static let maxFrame = 1 << 24
}

/// Streams the terminal log (`mlv.log/2` frames) to a file: frames are assembled in
/// a buffer and appended in blocks of 256 KiB (and whenever `flush` is called), so a
/// multi-GB log never sits in memory. A read of the same stream within the same
/// millisecond as the frame before it (still in the buffer) extends that frame.
final class TerminalLogWriter {
    let path: String
    private let fd: Int32
    private let buffer = ScratchBuffer(capacity: 1 << 19)
    private var closed = false
    private var lastTime: Int64 = 0
    /// The last frame, while it is still in the buffer: its stream, time and where its
    /// length is.
    private var open: (stream: Int, ms: Int64, lengthAt: Int, length: Int)?

    /// Creates (truncates) the log file; the magic goes out with the first block.
    init(path: String) throws {
        self.path = path
        fd = try wrap { try FS.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o644) }
        TerminalLog.magic.withUnsafeBytes { buffer.append($0) }
    }

    deinit { if !closed { FS.close(fd) } }

    /// Appends what was just read from `stream`, stamped now.
    func write(_ stream: TerminalLogFormatter.Stream, _ bytes: UnsafeRawBufferPointer) throws {
        try write(stream, bytes, milliseconds: max(0, wallClockNanoseconds() / 1_000_000))
    }

    /// Appends bytes that arrived at `ms` (milliseconds since the epoch).
    func write(_ stream: TerminalLogFormatter.Stream, _ bytes: UnsafeRawBufferPointer, milliseconds ms: Int64) throws {
        var rest = bytes
        while !rest.isEmpty {
            let s = stream.rawValue
            if let o = open, o.stream == s, o.ms == ms, o.length < TerminalLog.maxFrame {
                let take = min(rest.count, TerminalLog.maxFrame - o.length)
                buffer.append(UnsafeRawBufferPointer(rebasing: rest[..<take]))
                open!.length += take
                buffer.base.storeBytes(of: UInt32(open!.length).littleEndian, toByteOffset: o.lengthAt, as: UInt32.self)
                rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            } else {
                let delta = ms - lastTime
                lastTime = ms
                let zigzag = UInt64(bitPattern: (delta << 1) ^ (delta >> 63))
                buffer.appendVarint(zigzag << 1 | UInt64(s))
                open = (s, ms, buffer.count, 0)
                buffer.reserve(4)
                buffer.base.storeBytes(of: UInt32(0), toByteOffset: buffer.count, as: UInt32.self)
                buffer.count += 4
            }
        }
        if buffer.count >= 1 << 18 { try flush() }
    }

    /// Appends what is buffered to the file (whole frames only).
    func flush() throws {
        open = nil
        guard buffer.count > 0 else { return }
        try wrap { try FS.writeAll(fd, buffer.bytes, path: path) }
        buffer.count = 0
    }

    /// Writes what is buffered and closes the file.
    func close() throws {
        guard !closed else { return }
        closed = true
        defer { FS.close(fd) }
        try flush()
    }
}

extension ScratchBuffer {
    /// Appends `value` as a LEB128 varint.
    @inline(__always)
    func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            appendByte(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        appendByte(UInt8(v))
    }
}
