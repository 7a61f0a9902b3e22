import MLVBasics

/// Renders a terminal log of either format as `mlv.log/1` text, as its bytes arrive:
/// an `mlv.log/1` log (no magic) is passed through as it is; an `mlv.log/2` log's frames
/// are cut into lines and stamped by a `TerminalLogFormatter`, exactly as `mlv run`
/// used to do while the command ran (a line's time is its first byte's frame's time).
///
/// Bytes may arrive in any pieces: a frame header cut between two pieces is held until
/// the rest arrives (a log being written, `logs --follow`), and a payload is rendered as
/// far as it has arrived. `finish` ends the log: it writes each stream's unfinished last
/// line and, when `complete`, reports a cut frame as damage.
public struct TerminalLogReader: Sendable {
    /// Why an `mlv.log/2` log cannot be read, at which byte.
    public struct Damage: Error, Sendable, CustomStringConvertible {
        public var offset: Int
        public var reason: String
        public var description: String { "\(reason) at byte \(offset)" }
    }

    private enum Format { case unknown, text, frames }
    private var format = Format.unknown
    /// The first bytes, until they tell the format.
    private var head: [UInt8] = []
    /// A frame header being read.
    private var header: [UInt8] = []
    private var frameStart = 0
    private var offset = 0
    private var remaining = 0
    private var stream = TerminalLogFormatter.Stream.out
    private var time: Int64 = 0
    private var stampTime: Int64 = -1
    private var stamp: [UInt8] = []
    private var formatter: TerminalLogFormatter
    private var out: [UInt8] = []

    public init(maxLine: Int = TerminalLogFormatter.maxLine) {
        formatter = TerminalLogFormatter(maxLine: maxLine)
    }

    /// True once the log is known to be `mlv.log/2`.
    public var isFrames: Bool { format == .frames }

    /// Renders what `bytes` complete, calling `body` with the text (not at all when
    /// nothing is complete yet).
    /// - Throws: `Damage` for a frame header that cannot be one; what `body` throws.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var rest = bytes
        if format == .unknown {
            let take = min(rest.count, TerminalLog.magic.count - head.count)
            head.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[..<take]))
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            offset += take
            if !TerminalLog.magic.starts(with: head) {
                format = .text
                let held = head
                head = []
                try held.withUnsafeBytes { try body($0) }
            } else if head.count == TerminalLog.magic.count {
                format = .frames
                head = []
                frameStart = offset
            } else {
                return
            }
        }
        if format == .text {
            offset += rest.count
            if !rest.isEmpty { try body(rest) }
            return
        }
        try readFrames(rest)
        if !out.isEmpty {
            try out.withUnsafeBytes { try body($0) }
            out.removeAll(keepingCapacity: true)
        }
    }

    /// Ends the log: writes the unfinished last line of each stream (and bytes too few to
    /// tell the format, as text).
    /// - Parameter complete: the log is whole (a stored blob), so a frame cut short is
    ///   damage; false for an active run's file, whose writer may have died mid-frame.
    /// - Throws: `Damage` for a cut frame when `complete`; what `body` throws.
    public mutating func finish(complete: Bool, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        if format == .unknown {
            format = .text
            if !head.isEmpty { try head.withUnsafeBytes { try body($0) } }
            head = []
            return
        }
        guard format == .frames else { return }
        if complete && (remaining > 0 || !header.isEmpty) {
            throw Damage(offset: frameStart, reason: "a frame is cut short (the log ends \(remaining > 0 ? "\(remaining) bytes into its payload" : "in its header"))")
        }
        formatter.finish(time: stamp, into: &out)
        if !out.isEmpty { try out.withUnsafeBytes { try body($0) } }
        out = []
    }

    private mutating func readFrames(_ bytes: UnsafeRawBufferPointer) throws {
        var at = 0
        let count = bytes.count
        while at < count {
            if remaining > 0 {
                let take = min(remaining, count - at)
                formatter.feed(stream, UnsafeRawBufferPointer(rebasing: bytes[at..<(at + take)]), time: stamp, into: &out)
                at += take
                remaining -= take
                offset += take
                if remaining == 0 { frameStart = offset }
                continue
            }
            header.append(bytes[at])
            at += 1
            offset += 1
            try readHeader()
        }
    }

    /// Takes the frame header once it is whole: varint tag, 4-byte length.
    private mutating func readHeader() throws {
        var tag: UInt64 = 0
        var shift: UInt64 = 0
        var end = -1
        for (i, b) in header.enumerated() {
            if i == 9 && b > 1 { throw Damage(offset: frameStart, reason: "a frame header's varint is too long") }
            tag |= UInt64(b & 0x7F) << shift
            shift += 7
            if b < 0x80 { end = i + 1; break }
        }
        guard end > 0, header.count == end + 4 else { return }
        let length = Int(header[end]) | Int(header[end + 1]) << 8 | Int(header[end + 2]) << 16 | Int(header[end + 3]) << 24
        let zigzag = tag >> 1
        let delta = Int64(bitPattern: zigzag >> 1) ^ -Int64(bitPattern: zigzag & 1)
        let (t, overflow) = time.addingReportingOverflow(delta)
        guard !overflow, t >= 0, t < TerminalLog.timeLimit else {
            throw Damage(offset: frameStart, reason: "a frame's time is out of range")
        }
        time = t
        stream = tag & 1 == 0 ? .out : .err
        if time != stampTime {
            stampTime = time
            stamp = Array(Timestamp.format(milliseconds: time).utf8)
        }
        header.removeAll(keepingCapacity: true)
        remaining = length
        if length == 0 { frameStart = offset }
    }
}
