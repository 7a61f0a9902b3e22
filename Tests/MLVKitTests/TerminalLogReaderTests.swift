import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `mlv.log/2`: what `mlv run` writes (frames of raw reads) renders exactly as the
/// `mlv.log/1` text it used to write; `mlv.log/1` reads as it is; a log cut or garbled
/// is damage, never a crash.
@Suite struct TerminalLogReaderTests {
    typealias Piece = (stream: TerminalLogFormatter.Stream, bytes: [UInt8], ms: Int64)

    static let base: Int64 = 1_795_741_200_000  // 2026-11-27T01:00:00.000Z

    /// The frames `TerminalLogWriter` writes for these reads (through a real file).
    func frames(_ pieces: [Piece], flushEvery: Int = 0) throws -> [UInt8] {
        let dir = try TemporaryDirectory()
        let w = try TerminalLogWriter(path: dir.path + "/log")
        for (i, p) in pieces.enumerated() {
            try p.bytes.withUnsafeBytes { try w.write(p.stream, $0, milliseconds: p.ms) }
            if flushEvery > 0 && i % flushEvery == 0 { try w.flush() }
        }
        try w.close()
        return try FS.readFile(dir.path + "/log")
    }

    /// The `mlv.log/1` text the old writer made of the same reads.
    func v1(_ pieces: [Piece], maxLine: Int = TerminalLogFormatter.maxLine) -> [UInt8] {
        var f = TerminalLogFormatter(maxLine: maxLine)
        var out: [UInt8] = []
        for p in pieces {
            p.bytes.withUnsafeBytes { f.feed(p.stream, $0, time: Array(Timestamp.format(milliseconds: p.ms).utf8), into: &out) }
        }
        f.finish(time: [], into: &out)
        return out
    }

    /// Renders `bytes` fed in pieces of the given sizes (cycled).
    func render(_ bytes: [UInt8], pieces sizes: [Int] = [1 << 20], complete: Bool = true, maxLine: Int = TerminalLogFormatter.maxLine) throws -> [UInt8] {
        var reader = TerminalLogReader(maxLine: maxLine)
        var out: [UInt8] = []
        var at = 0, k = 0
        try bytes.withUnsafeBytes { all in
            while at < all.count {
                let n = min(all.count - at, max(1, sizes[k % sizes.count]))
                k += 1
                try reader.feed(UnsafeRawBufferPointer(rebasing: all[at..<(at + n)])) { out.append(contentsOf: $0) }
                at += n
            }
        }
        try reader.finish(complete: complete) { out.append(contentsOf: $0) }
        return out
    }

    /// Random reads: both streams, newlines, CRs, CRLFs cut between reads, binary bytes,
    /// times that repeat (coalesced frames), step forward, and sometimes go back.
    func randomPieces(seed: UInt64, count: Int) -> [Piece] {
        let r = splitmix64Bytes(seed: seed, count: count * 4)
        var pieces: [Piece] = []
        var ms = Self.base
        for i in 0..<count {
            let a = r[4 * i], b = r[4 * i + 1], c = r[4 * i + 2], d = r[4 * i + 3]
            switch a % 8 {
            case 0, 1, 2: break
            case 3: ms -= Int64(b % 5)
            default: ms += Int64(b % 40)
            }
            let alphabet: [UInt8] = [10, 13, 65, 66, 0, 0xFF, 0xC3, 32]
            let body = splitmix64Bytes(seed: seed &+ UInt64(i) &* 31, count: Int(c % 200))
            let bytes = body.map { d % 4 == 0 ? $0 : alphabet[Int($0 % 8)] }
            pieces.append((a % 3 == 0 ? .err : .out, bytes, ms))
        }
        return pieces
    }

    @Test func framesRenderAsTheOldTextForHandPickedCases() throws {
        let t = Self.base
        let cases: [[Piece]] = [
            [],
            [(.out, [], t)],
            [(.out, Array("hel".utf8), t), (.out, Array("lo\nwor".utf8), t + 1), (.out, Array("ld\n".utf8), t + 2)],
            [(.out, Array("a".utf8), t), (.err, Array("e1\ne2".utf8), t + 5), (.out, Array("b\nc".utf8), t + 5)],
            [(.out, Array("a\r".utf8), t), (.out, Array("\nb\n".utf8), t), (.out, Array("10%\r20%\r".utf8), t + 1)],
            [(.err, [0, 0xFF, 0xFE, 0x80, 7, 10, 0xC3], t)],
            [(.out, Array("late\n".utf8), t + 1000), (.out, Array("clock went back\n".utf8), t + 10)],
            [(.out, Array("no newline at the end".utf8), t), (.err, Array("nor here".utf8), t + 3)],
        ]
        for pieces in cases {
            let stored = try frames(pieces)
            #expect(stored.starts(with: TerminalLog.magic))
            #expect(try render(stored) == v1(pieces), "\(pieces)")
        }
        #expect(try frames([]) == TerminalLog.magic, "no output: the magic alone")
        #expect(try render(TerminalLog.magic).isEmpty)
    }

    @Test(arguments: [1, 2, 3, 4])
    func randomReadsRoundTripWhateverThePiecesTheyAreReadIn(seed: UInt64) throws {
        let pieces = randomPieces(seed: seed, count: 3000)
        let stored = try frames(pieces, flushEvery: Int(seed) * 7)
        let expected = v1(pieces)
        #expect(try render(stored) == expected)
        #expect(try render(stored, pieces: [1, 3, 7, 2, 500]) == expected, "frame headers and payloads cut anywhere")
        // A line longer than the cap is cut where the cap falls within the frame that
        // reaches it, so where the cut falls depends on the reads (as it always did) and
        // on coalescing: compared here with one frame per read (every read its own time).
        let apart = pieces.enumerated().map { i, p in (p.stream, p.bytes, Self.base + Int64(i)) }
        #expect(try render(try frames(apart), pieces: [1], maxLine: 50) == v1(apart, maxLine: 50), "long lines are cut at the cap as before")
    }

    @Test func aReadOfTheSameStreamInTheSameMillisecondExtendsTheFrame() throws {
        let t = Self.base
        let one = try frames([(.out, Array("a\n".utf8), t), (.out, Array("b\n".utf8), t), (.out, Array("c\n".utf8), t)])
        let three = try frames([(.out, Array("a\n".utf8), t), (.out, Array("b\n".utf8), t + 1), (.out, Array("c\n".utf8), t + 2)])
        #expect(one.count < three.count)
        #expect(one.count == TerminalLog.magic.count + 7 + 4 + 6, "one header (a 7-byte varint: the first time is absolute; a 4-byte length) and 6 bytes")
        #expect(try render(one) == Array("2026-11-27T01:00:00.000Z out a\n2026-11-27T01:00:00.000Z out b\n2026-11-27T01:00:00.000Z out c\n".utf8))
    }

    @Test func oldTextLogsReadAsTheyAreInAnyPieces() throws {
        let text = Array("2026-11-27T01:00:00.000Z out a\n2026-11-27T01:00:00.001Z err b\n2026-11-27T01:00:00Z out imported\n".utf8)
        for sizes in [[1], [3, 1], [9], [10], [11], [1 << 20]] {
            #expect(try render(text, pieces: sizes) == text, "\(sizes)")
        }
        #expect(try render(Array("2026".utf8)) == Array("2026".utf8), "too short to tell: text")
        #expect(try render(Array("mlv.lo".utf8)) == Array("mlv.lo".utf8), "a prefix of the magic that ends is text")
        #expect(try render([]) == [])
    }

    /// A log being written: only finished lines come out; a cut header or payload waits
    /// for the rest, and what comes out is always a prefix of the whole rendering.
    @Test func aFrameCutMidWayIsWaitedForNotMisread() throws {
        let pieces = randomPieces(seed: 9, count: 400)
        let stored = try frames(pieces)
        let whole = v1(pieces)
        for cut in stride(from: 0, to: stored.count, by: max(1, stored.count / 97)) {
            var reader = TerminalLogReader()
            var out: [UInt8] = []
            try stored[..<cut].withUnsafeBytes { try reader.feed($0) { out.append(contentsOf: $0) } }
            #expect(whole.starts(with: out), "cut at \(cut)")
            try stored[cut...].withUnsafeBytes { try reader.feed($0) { out.append(contentsOf: $0) } }
            try reader.finish(complete: true) { out.append(contentsOf: $0) }
            #expect(out == whole, "cut at \(cut)")
        }
    }

    @Test func aTruncatedLogIsDamageWhenCompleteAndTheUnfinishedLinesOtherwise() throws {
        let t = Self.base
        let stored = try frames([(.out, Array("one\n".utf8), t), (.err, Array("two\nthr".utf8), t + 1)])
        let boundary = try frames([(.out, Array("one\n".utf8), t)]).count
        for cut in (TerminalLog.magic.count + 1)..<(stored.count) where cut != boundary {
            let part = Array(stored[..<cut])
            #expect(throws: TerminalLogReader.Damage.self, "cut at \(cut)") { try render(part) }
            #expect(throws: Never.self, "cut at \(cut)") { try render(part, complete: false) }
        }
        // The writer died mid-payload: what arrived is shown, the unfinished line too.
        let dead = try render(Array(stored.dropLast(2)), complete: false)
        #expect(String(decoding: dead, as: UTF8.self) == "2026-11-27T01:00:00.000Z out one\n2026-11-27T01:00:00.001Z err two\n2026-11-27T01:00:00.001Z err t\n")
    }

    @Test func garbageAfterTheMagicIsDamageOrText() throws {
        #expect(throws: TerminalLogReader.Damage.self) { try render(TerminalLog.magic + [UInt8](repeating: 0xFF, count: 12)) }
        // A time past the year 9999, and one before 1970.
        #expect(throws: TerminalLogReader.Damage.self) { try render(TerminalLog.magic + [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0, 0]) }
        #expect(throws: TerminalLogReader.Damage.self) { try render(TerminalLog.magic + [3, 0, 0, 0, 0]) }
        for seed in 0..<300 as Range<UInt64> {
            let junk = TerminalLog.magic + splitmix64Bytes(seed: seed, count: Int(seed % 64) + 1)
            // Either readable or damage: never a crash, never a hang.
            _ = try? render(junk)
            _ = try? render(junk, pieces: [1], complete: false)
        }
    }

    func storeRun(_ repo: Repository, run: String, log: [UInt8]) throws -> (RunRecord, ObjectID) {
        let id = try repo.storeBlobs([log])[0]
        let m = RunManifest(run: run, name: "r\(run.suffix(2))", command: ["x"], cwd: ".", started: "2026-11-27T01:00:00.000Z",
                            ended: "2026-11-27T01:00:01.000Z", status: .succeeded, log: id, author: "t")
        try repo.recordRun(m)
        return (try repo.findRun(run), id)
    }

    @Test func aDamagedStoredLogNamesTheRunAndTheBlob() throws {
        let t = try TestRepository()
        let stored = try frames([(.out, Array("one\ntwo\n".utf8), Self.base)])
        for (i, bad) in [Array(stored.dropLast(3)), TerminalLog.magic + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]].enumerated() {
            let (r, id) = try storeRun(t.repository, run: "00000000000000d\(i)", log: bad)
            expectMLVError({ if case .damaged = $0 { true } else { false } }, mentions: [r.run, id.hex, "log"]) {
                try t.repository.streamLog(r) { _ in }
            }
        }
        let (good, _) = try storeRun(t.repository, run: "00000000000000d9", log: stored)
        var out: [UInt8] = []
        try t.repository.streamLog(good) { out += $0 }
        #expect(String(decoding: out, as: UTF8.self) == "2026-11-27T01:00:00.000Z out one\n2026-11-27T01:00:00.000Z out two\n")
    }

    /// `logs --follow` over an active `mlv.log/2` file written in pieces that cut frames
    /// (header and payload), then the stored rest: every line once, in order.
    @Test func followReadsAGrowingFrameLogWithFramesCutMidWay() throws {
        let t = try TestRepository()
        let repo = t.repository
        let run = "00000000000000f3"
        let dir = try RunFixture.active(repo, run: run, name: "live2")
        let pieces = randomPieces(seed: 5, count: 300)
        let stored = try frames(pieces, flushEvery: 3)
        let whole = v1(pieces)
        let firstPart = stored.count * 2 / 3
        var reader = TerminalLogReader()
        var rendered = 0
        try stored[..<firstPart].withUnsafeBytes { try reader.feed($0) { rendered += $0.count } }
        let expectedFirst = rendered
        guard case .active(let active) = try repo.locateRun("live2") else { Issue.record("not active"); return }
        let printed = Mutex(0)
        let writer = startThread {
            let fd = try! FS.open(dir + "/log", O_WRONLY | O_CREAT | O_APPEND)
            var at = 0
            var k = 0
            while at < firstPart {
                // 1, 4, 7, ... bytes at a time: headers and payloads are cut everywhere.
                let n = min(firstPart - at, 1 + (k % 5) * 3)
                k += 1
                try! stored[at..<(at + n)].withUnsafeBytes { try! FS.writeAll(fd, $0, path: "log") }
                at += n
                if k % 8 == 0 { usleep(1000) }
            }
            FS.close(fd)
            for _ in 0..<5000 where printed.withLock({ $0 }) < expectedFirst { usleep(2000) }
            _ = try! storeRun(repo, run: run, log: stored)
            try! FS.removeTree(dir)
        }
        var seen: [UInt8] = []
        let end = try repo.followLog(active, pollMilliseconds: 2) { bytes in
            seen += bytes
            printed.withLock { $0 = seen.count }
        }
        pthread_join(writer, nil)
        #expect(seen == whole)
        guard case .recorded(let r) = end else { Issue.record("expected the recorded run, got \(end)"); return }
        #expect(r.run == run)
    }

    /// `mlv logs` on an active run shows its finished lines; on an abandoned one (its
    /// writer died mid-frame) the unfinished ones too.
    @Test func anActiveFrameLogShowsFinishedLinesAndAnAbandonedOneEverything() throws {
        let t = try TestRepository()
        let stored = try frames([(.out, Array("done\npart".utf8), Self.base)])
        let cut = Array(stored.dropLast(1))
        for (run, pid, expected) in [("00000000000000e1", Int64(getpid()), "2026-11-27T01:00:00.000Z out done\n"),
                                     ("00000000000000e2", Int64(Int32.max), "2026-11-27T01:00:00.000Z out done\n2026-11-27T01:00:00.000Z out par\n")] {
            let dir = try RunFixture.active(t.repository, run: run, name: "n\(run.suffix(1))", pid: pid)
            try FS.atomicWrite(dir + "/log", cut)
            guard case .active(let a) = try t.repository.locateRun(run) else { Issue.record("not active"); return }
            var out: [UInt8] = []
            try t.repository.streamActiveLog(a) { out += $0 }
            #expect(String(decoding: out, as: UTF8.self) == expected)
        }
    }
}
