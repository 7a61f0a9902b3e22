import MLVBasics
import MLVTestSupport
import Testing

@testable import MLVStore

#if canImport(Glibc)
import Glibc
#endif

private func sample(entries count: Int = 3) -> StatCache {
    let paths = ["a.csv", "data/ünïcode/日本.bin", String(repeating: "deep/", count: 20) + "leaf", "", "z"]
    let entries = (0..<count).map { i -> StatCache.Entry in
        let n = UInt64(i)
        let path: String = i < paths.count ? paths[i] : "\(paths[i % paths.count])-\(i)"
        let mtime: Int64 = 1_780_000_000_000_000_000 + Int64(i)
        let ctime: Int64 = 1_780_000_000_500_000_000 - Int64(i)
        return StatCache.Entry(
            path: path, mode: 0o100644 + UInt32(i), dev: 0x801 + n, ino: 1_000_000 + n * 7, size: n * 4096 + 17,
            mtimeNanoseconds: mtime, ctimeNanoseconds: ctime, blob: SHA256.hash(Array("blob \(i)".utf8)),
            quickHigh: 0xDEAD_BEEF_0000_0000 | n, quickLow: ~n)
    }
    return StatCache(source: "/work/data/ünïcode", root: SHA256.hash(Array("root".utf8)),
                     scanStarted: 1_780_000_001_000_000_000, entries: entries)
}

private func expectEqual(_ a: StatCache?, _ b: StatCache, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let a else {
        Issue.record("did not decode", sourceLocation: sourceLocation)
        return
    }
    #expect(a.source == b.source, sourceLocation: sourceLocation)
    #expect(a.root == b.root, sourceLocation: sourceLocation)
    #expect(a.scanStarted == b.scanStarted, sourceLocation: sourceLocation)
    #expect(a.entries == b.entries, sourceLocation: sourceLocation)
}

/// Sets the XXH3 trailer to match the bytes before it.
private func resealed(_ bytes: [UInt8]) -> [UInt8] {
    var body = Array(bytes.dropLast(8))
    body.appendLE(XXHash.xxh3_64(body))
    return body
}

@Suite("StatCache")
struct StatCacheTests {
    @Test("encode then decode gives the same cache", arguments: [0, 1, 3, 50])
    func roundTrip(entries: Int) {
        let cache = sample(entries: entries)
        expectEqual(StatCache.decode(cache.encoded()), cache)
    }

    @Test("every single-byte change of an encoded cache decodes to nil", arguments: [UInt8(0x01), 0x80, 0xFF])
    func singleByteCorruption(mask: UInt8) {
        let bytes = sample().encoded()
        var accepted: [Int] = []
        for offset in bytes.indices {
            var damaged = bytes
            damaged[offset] ^= mask
            if StatCache.decode(damaged) != nil { accepted.append(offset) }
        }
        #expect(accepted == [])
    }

    @Test("every truncation, and an extra byte, decodes to nil")
    func truncation() {
        let bytes = sample().encoded()
        let accepted = (0..<bytes.count).filter { StatCache.decode(Array(bytes.prefix($0))) != nil }
        #expect(accepted == [])
        #expect(StatCache.decode(bytes + [0]) == nil)
        #expect(StatCache.decode(resealed(bytes + [0, 0, 0, 0, 0, 0, 0, 0, 0])) == nil, "trailing bytes behind a valid checksum")
    }

    /// Damage that a checksum cannot see (a crafted file, or a 1-in-2^64 accident): the
    /// parser's own bounds checks must hold. Run in a child process because a length that
    /// shifts where the entry count is read can make it trap (see the next test).
    @Test("single-byte changes behind a valid checksum never crash the decoder")
    func structuralDamage() async {
        await #expect(processExitsWith: .success) {
            let bytes = sample().encoded()
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                for offset in 0..<(bytes.count - 8) {
                    var damaged = bytes
                    damaged[offset] ^= mask
                    _ = StatCache.decode(resealed(damaged))
                }
            }
        }
    }

    @Test("an entry count above Int.max behind a valid checksum decodes to nil")
    func hugeEntryCount() async throws {
        await #expect(processExitsWith: .success) {
            let cache = StatCache(source: "/src", root: SHA256.hash([]), scanStarted: 1, entries: [])
            var bytes = cache.encoded()
            bytes[8 + 32 + 8 + 16 + 4 + 4 + 7] = 0x80
            var body = Array(bytes.dropLast(8))
            body.appendLE(XXHash.xxh3_64(body))
            exit(StatCache.decode(body) == nil ? 0 : 3)
        }
    }

    @Test("an entry is racy when its mtime or ctime is not older than the scan start")
    func racyClean() {
        let cache = sample()
        let started = cache.scanStarted
        func entry(mtime: Int64, ctime: Int64) -> StatCache.Entry {
            var e = cache.entries[0]
            e.mtimeNanoseconds = mtime
            e.ctimeNanoseconds = ctime
            return e
        }
        #expect(!cache.isRacy(entry(mtime: started - 1, ctime: started - 1)))
        #expect(!cache.isRacy(entry(mtime: 0, ctime: 0)))
        #expect(cache.isRacy(entry(mtime: started, ctime: started - 1)))
        #expect(cache.isRacy(entry(mtime: started - 1, ctime: started)))
        #expect(cache.isRacy(entry(mtime: started + 1, ctime: 0)))
        #expect(cache.isRacy(entry(mtime: 0, ctime: .max)))
    }

    @Test("matches compares every stat field and nothing else")
    func matches() {
        let base = sample().entries[1]
        #expect(base.matches(base))
        var other = base
        other.path = "elsewhere"
        other.blob = SHA256.hash([1])
        other.quickHigh = 0
        other.quickLow = 0
        #expect(base.matches(other), "path, blob and quick hash are not stat data")
        let changes: [(String, (inout StatCache.Entry) -> Void)] = [
            ("mode", { $0.mode ^= 0o111 }), ("dev", { $0.dev += 1 }), ("ino", { $0.ino += 1 }),
            ("size", { $0.size += 1 }), ("mtime", { $0.mtimeNanoseconds += 1 }), ("ctime", { $0.ctimeNanoseconds += 1 }),
        ]
        for (field, change) in changes {
            var changed = base
            change(&changed)
            #expect(!base.matches(changed), "\(field) differs")
        }
    }
}
