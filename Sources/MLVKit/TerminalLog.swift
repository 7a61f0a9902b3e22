import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// Turns a command's stdout and stderr bytes into the terminal log format:
/// `<RFC 3339 UTC time with milliseconds> <out|err> <the line, without its newline>\n`.
///
/// A line ends at `\n`, at `\r\n`, or at a lone `\r` (a progress bar redrawing its line
/// becomes one log line per redraw). A line's time is when its first byte arrived. A
/// line longer than `maxLine` bytes (binary output without newlines) is cut there, so
/// memory stays bounded whatever the command prints. Bytes are copied as they are:
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
            while count - rest + pending[s].count >= maxLine {
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

    @inline(__always)
    private mutating func emit(_ s: Int, _ line: UnsafeRawBufferPointer, time: UnsafeRawBufferPointer) {
        if pending[s].isEmpty {
            prefix(s, time, room: line.count + 1)
        } else {
            if let t = pendingTime[s] { t.withUnsafeBytes { prefix(s, $0, room: pending[s].count + line.count + 1) } }
            else { prefix(s, time, room: pending[s].count + line.count + 1) }
            pending[s].withUnsafeBytes { scratch.append($0) }
            pending[s].removeAll(keepingCapacity: true)
            pendingTime[s] = nil
        }
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

/// Streams the terminal log to a file: formatted lines are buffered and appended in
/// blocks, so a multi-GB log never sits in memory.
final class TerminalLogWriter {
    private var formatter = TerminalLogFormatter()
    private var buffer: [UInt8] = []
    private let out: FileAppender
    private var lastMillisecond: Int64 = -1
    private var stamp: [UInt8] = []

    /// Creates (truncates) the log file.
    init(path: String) throws {
        out = try FileAppender(path: path)
        buffer.reserveCapacity(1 << 18)
    }

    var path: String { out.path }

    /// The time stamp for now, formatted once per millisecond.
    private func now() -> [UInt8] {
        let ns = wallClockNanoseconds()
        if ns / 1_000_000 != lastMillisecond {
            lastMillisecond = ns / 1_000_000
            stamp = Array(Timestamp.format(nanoseconds: ns).utf8)
        }
        return stamp
    }

    func write(_ stream: TerminalLogFormatter.Stream, _ bytes: UnsafeRawBufferPointer) throws {
        formatter.feed(stream, bytes, time: now(), into: &buffer)
        if buffer.count >= 1 << 18 { try flush() }
    }

    func flush() throws {
        guard !buffer.isEmpty else { return }
        try out.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes any partial last lines and closes the file.
    func close() throws {
        formatter.finish(time: now(), into: &buffer)
        try flush()
        try out.close()
    }
}
