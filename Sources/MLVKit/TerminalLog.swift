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

    private static let tags: [[UInt8]] = [Array(" out ".utf8), Array(" err ".utf8)]

    public static let maxLine = 1 << 20
    private var pending: [[UInt8]] = [[], []]
    private var pendingTime: [[UInt8]?] = [nil, nil]
    private var afterCR = [false, false]
    private let maxLine: Int

    public init(maxLine: Int = TerminalLogFormatter.maxLine) {
        self.maxLine = maxLine
    }

    /// Appends the log lines completed by `bytes` (which arrived at `time`) to `out`.
    public mutating func feed(_ stream: Stream, _ bytes: UnsafeRawBufferPointer, time: [UInt8], into out: inout [UInt8]) {
        let s = stream.rawValue
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
            emit(s, UnsafeRawBufferPointer(start: base + start, count: at - start), time: time, into: &out)
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
            if pendingTime[s] == nil { pendingTime[s] = time }
            var rest = start
            while count - rest + pending[s].count >= maxLine {
                let take = maxLine - pending[s].count
                pending[s].append(contentsOf: UnsafeRawBufferPointer(start: base + rest, count: take))
                flushPending(s, into: &out)
                pendingTime[s] = time
                rest += take
            }
            if rest < count { pending[s].append(contentsOf: UnsafeRawBufferPointer(start: base + rest, count: count - rest)) }
            else { pendingTime[s] = nil }
        }
    }

    /// Appends each stream's unfinished last line, if any, stamped with the time its
    /// first byte arrived (or `time` when none is known).
    public mutating func finish(time: [UInt8], into out: inout [UInt8]) {
        for s in 0..<2 where !pending[s].isEmpty {
            if pendingTime[s] == nil { pendingTime[s] = time }
            flushPending(s, into: &out)
        }
    }

    private mutating func flushPending(_ s: Int, into out: inout [UInt8]) {
        out.append(contentsOf: pendingTime[s]!)
        out.append(contentsOf: Self.tags[s])
        out.append(contentsOf: pending[s])
        out.append(10)
        pending[s].removeAll(keepingCapacity: true)
        pendingTime[s] = nil
    }

    private mutating func emit(_ s: Int, _ line: UnsafeRawBufferPointer, time: [UInt8], into out: inout [UInt8]) {
        if pending[s].isEmpty {
            out.append(contentsOf: time)
        } else {
            out.append(contentsOf: pendingTime[s] ?? time)
            out.append(contentsOf: Self.tags[s])
            out.append(contentsOf: pending[s])
            pending[s].removeAll(keepingCapacity: true)
            pendingTime[s] = nil
            out.append(contentsOf: line)
            out.append(10)
            return
        }
        out.append(contentsOf: Self.tags[s])
        out.append(contentsOf: line)
        out.append(10)
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
