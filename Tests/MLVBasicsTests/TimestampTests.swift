import MLVBasics
import MLVTestSupport
import Testing

@Suite("Timestamp")
struct TimestampTests {
    @Test("known values")
    func knownValues() {
        #expect(Timestamp.format(seconds: 0) == "1970-01-01T00:00:00Z")
        #expect(Timestamp.format(seconds: 1_000_000_000) == "2001-09-09T01:46:40Z")
        #expect(Timestamp.format(seconds: 951_782_400) == "2000-02-29T00:00:00Z")
        #expect(Timestamp.parse("2001-09-09T01:46:40Z") == 1_000_000_000)
        #expect(Timestamp.parse("2001-09-09T01:46Z") == 999_999_960)
        #expect(Timestamp.parse("2001-09-09") == 999_993_600)
        #expect(Timestamp.parse("2000-02-29") == 951_782_400)
    }

    @Test("format then parse round trips, years 1970 to 9999")
    func roundTrip() {
        var x: UInt64 = 99
        for _ in 0..<2000 {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            let seconds = Int64((x >> 1) % 253_402_300_800)
            let text = Timestamp.format(seconds: seconds)
            #expect(Timestamp.parse(text) == seconds, "\(text)")
        }
    }

    static let garbage: [String] = [
        "", "2026", "2026-1-01", "2026-01-1", "2026/01/01", "20260101", "2026-01-01T", "2026-01-01T10",
        "2026-01-01T10:00", "2026-01-01T10:00:00", "2026-01-01 10:00:00Z", "2026-01-01T10:00:00+01:00",
        "2026-01-01T10:00:0Z", "2026-01-01T10:00:00ZZ", "2026-01-01x", "2026-00-10", "2026-13-01",
        "2026-01-00", "2026-01-32", "2026-01-01T24:00:00Z", "2026-01-01T10:60:00Z", "2026-01-01T10:00:61Z",
        "abcd-ef-gh", "-026-01-01", "2026-01-01T1a:00Z", " 2026-01-01", "2026-01-01\n",
    ]

    @Test("rejects what is not a timestamp", arguments: garbage)
    func rejectsGarbage(_ text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test("rejects days the month does not have", arguments: ["2026-02-29", "2026-02-30", "2026-04-31", "2100-02-29"])
    func rejectsImpossibleDays(_ text: String) {
        #expect(Timestamp.parse(text) == nil)
    }
}
