#if canImport(Glibc)
import Glibc
#endif

/// RFC 3339 UTC timestamps (`2026-11-26T23:40:05Z`), without Foundation.
public enum Timestamp {
    /// Formats seconds since the epoch (`gmtime_r`).
    public static func format(seconds: Int64) -> String {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }

    public static func now() -> String {
        format(seconds: Int64(time(nil)))
    }

    /// Formats nanoseconds since the epoch with milliseconds: `2026-11-27T01:00:00.123Z`.
    public static func format(nanoseconds: Int64) -> String {
        format(milliseconds: nanoseconds / 1_000_000)
    }

    /// Formats milliseconds since the epoch: `2026-11-27T01:00:00.123Z`.
    public static func format(milliseconds: Int64) -> String {
        let seconds = milliseconds / 1000
        let millis = Int(milliseconds % 1000)
        var text = format(seconds: seconds)
        text.removeLast()
        let m = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return text + "." + m + "Z"
    }

    /// Now, with milliseconds.
    public static func nowMilliseconds() -> String {
        format(nanoseconds: wallClockNanoseconds())
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]Z` (UTC); nil otherwise.
    public static func parse(_ text: String) -> Int64? {
        let digits = text.utf8.map { $0 }
        func number(_ from: Int, _ count: Int) -> Int32? {
            guard from + count <= digits.count else { return nil }
            var v: Int32 = 0
            for c in digits[from..<(from + count)] {
                guard (48...57).contains(c) else { return nil }
                v = v * 10 + Int32(c - 48)
            }
            return v
        }
        guard let y = number(0, 4), digits.count >= 10, digits[4] == 45, let mo = number(5, 2), digits[7] == 45,
              let d = number(8, 2) else { return nil }
        var parts = tm()
        parts.tm_year = y - 1900; parts.tm_mon = mo - 1; parts.tm_mday = d
        if digits.count > 10 {
            guard digits[10] == UInt8(ascii: "T"), let h = number(11, 2), digits.count > 13, digits[13] == 58,
                  let mi = number(14, 2) else { return nil }
            parts.tm_hour = h; parts.tm_min = mi
            var at = 16
            if digits.count > 16 && digits[16] == 58 {
                guard let s = number(17, 2) else { return nil }
                parts.tm_sec = s
                at = 19
            }
            guard at == digits.count - 1, digits[at] == UInt8(ascii: "Z") else { return nil }
        }
        guard (1...12).contains(mo), (1...31).contains(d), parts.tm_hour < 24, parts.tm_min < 60, parts.tm_sec < 60 else { return nil }
        let (year, month, day) = (parts.tm_year, parts.tm_mon, parts.tm_mday)
        let seconds = Int64(timegm(&parts))
        // timegm normalises Feb 30 to Mar 2: a date that moved did not exist.
        guard parts.tm_year == year, parts.tm_mon == month, parts.tm_mday == day else { return nil }
        return seconds
    }
}
