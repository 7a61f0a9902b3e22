import MLVBasics
import MLVKit
import MLVModel
#if canImport(Glibc)
@preconcurrency import Glibc  // `stdout`, a C global, for flushStandardOutput
#endif

/// Writes a line to stdout.
func say(_ text: String) {
    print(text)
}

/// Writes text that already ends in a newline (or nothing) to stdout, in one call.
func sayText(_ text: String) {
    print(text, terminator: "")
}

/// Flushes stdout and fails when anything written to it was lost (a full disk, a closed
/// descriptor): `print` drops write errors, and a command whose output vanished must not
/// exit 0 as if it had said what it did.
/// - Throws: `FileSystemError` naming stdout.
func flushStandardOutput() throws {
    let flushed = fflush(stdout) == 0
    let code = errno
    if !flushed || ferror(stdout) != 0 {
        clearerr(stdout)
        throw FileSystemError(call: "write", path: "stdout", errno: flushed ? EIO : code)
    }
}

/// Writes a line to stderr, prefixed `mlv: `.
func printError(_ text: String) {
    var line = "mlv: " + text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// Prints a JSON value for scripts (canonical: sorted keys, one line).
func sayJSON(_ value: JSON) {
    say(String(decoding: value.canonicalBytes(), as: UTF8.self))
}

/// Bytes for people: 1.2 MB, 3.4 GiB style with binary units.
func humanBytes(_ n: Int64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n), u = 0
    while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
    if u == 0 { return "\(n) B" }
    let rounded = (v * 10).rounded() / 10
    return "\(rounded) \(units[u])"
}

/// A progress reporter on stderr, only when stderr is a terminal.
func terminalProgress(_ label: String) -> Progress? {
    guard isatty(2) == 1 else { return nil }
    return Progress { bytes in
        var line = "\r\(label): \(humanBytes(Int64(bytes)))   "
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}

/// Ends a progress line, if one was drawn.
func endProgress(_ progress: Progress?) {
    guard progress != nil else { return }
    var line = "\r\u{1B}[K"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

extension Resolved {
    var json: JSON {
        var o: [String: JSON] = ["kind": .string(kind), "name": .string(name), "version": .int(Int64(version)), "id": .string(id.hex)]
        if let split { o["split"] = .string(split) }
        return .object(o)
    }
}

func pad(_ s: String, _ width: Int) -> String {
    let n = displayWidth(s)
    return n >= width ? s : s + String(repeating: " ", count: width - n)
}

/// The characters in `s` (`count`), taken from its UTF-8 length when it is ASCII, which
/// costs no grapheme breaking.
func displayWidth(_ s: String) -> Int {
    s.utf8.withContiguousStorageIfAvailable { $0.allSatisfy { $0 < 0x80 } ? $0.count : nil }.flatMap { $0 } ?? s.count
}

/// Runs of 0...32 spaces, for padding without building a string per cell.
private let spaceRuns = (0...32).map { String(repeating: " ", count: $0) }

/// Lays out rows in aligned columns.
func table(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    var widths = [Int](repeating: 0, count: first.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], displayWidth(c)) } }
    var out = ""
    out.reserveCapacity(rows.count * (widths.reduce(0, +) + 2 * widths.count + 1))
    for (n, r) in rows.enumerated() {
        if n > 0 { out += "\n" }
        for (i, c) in r.enumerated() {
            if i > 0 { out += "  " }
            out += c
            let gap = i < r.count - 1 ? widths[i] - displayWidth(c) : 0
            if gap > 0 { out += gap < spaceRuns.count ? spaceRuns[gap] : String(repeating: " ", count: gap) }
        }
    }
    return out
}
