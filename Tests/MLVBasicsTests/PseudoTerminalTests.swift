import MLVBasics
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct PseudoTerminalTests {
    /// Everything the master side gives until the end (EIO once the child side is closed).
    func readToEnd(_ t: PseudoTerminal) -> [UInt8] {
        var got: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = buffer.withUnsafeMutableBytes { Pipes.read(t.master, into: $0) }
            if n <= 0 { return got }
            got += buffer[0..<n]
        }
    }

    @Test func rawBytesPassUnchangedAndTheEndIsReported() throws {
        let t = try PseudoTerminal(size: WindowSize(rows: 12, columns: 34))
        #expect(PseudoTerminal.isTerminal(t.child))
        #expect(PseudoTerminal.windowSize(of: t.child) == WindowSize(rows: 12, columns: 34))
        t.setSize(WindowSize(rows: 50, columns: 160))
        #expect(PseudoTerminal.windowSize(of: t.child) == WindowSize(rows: 50, columns: 160))
        let text: [UInt8] = Array("a\nb\r\nc\u{1b}[31mred".utf8)
        #expect(text.withUnsafeBytes { Pipes.writeAll(t.child, $0) })
        t.closeChild()
        let got = readToEnd(t)
        #expect(got == text, "raw mode: no \\n -> \\r\\n, nothing dropped before the end")
        #expect(!PseudoTerminal.isTerminal(-1))
        #expect(PseudoTerminal.windowSize(of: -1) == nil)
    }

    @Test func aChildWritesThroughIt() throws {
        let t = try PseudoTerminal()
        let p = try Subprocess(arguments: ["sh", "-c", "test -t 1 && echo yes"], stdinNull: true,
                               stdout: .descriptor(t.child), stderr: .discard)
        t.closeChild()
        let got = readToEnd(t)
        #expect(p.wait() == .exited(0))
        #expect(got == Array("yes\n".utf8))
    }
}
