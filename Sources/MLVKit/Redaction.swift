#if canImport(Glibc)
import Glibc
#endif

/// Keeps secrets out of what a run records: environment variables whose name says they
/// are secret, values that look like credentials, and credentials inside URLs.
///
/// It errs on the side of redacting: a long random-looking value (a hash, say) is
/// redacted too. What is redacted is replaced by `<redacted>`; nothing of it is kept.
public enum Redaction {
    public static let marker = "<redacted>"

    /// Name fragments (case-insensitive) that mark a variable as secret.
    static let secretNameParts = ["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE", "AUTH"]

    /// Whether a variable with this name holds a secret, by its name alone.
    public static func isSecretName(_ name: String) -> Bool {
        let upper = name.uppercased()
        return secretNameParts.contains { upper.contains($0) }
    }

    /// The environment as recorded: secret names and credential-like values redacted,
    /// credentials in URLs removed.
    public static func environment(_ variables: [String: String]) -> [String: String] {
        var out: [String: String] = [:]
        for (name, value) in variables {
            out[name] = isSecretName(name) ? marker : redactValue(value)
        }
        return out
    }

    /// A value with credential-looking parts replaced: the whole value when it holds a
    /// known token format or a long high-entropy string, the `user:password@` of a URL.
    public static func redactValue(_ value: String) -> String {
        let stripped = stripURLCredentials(value, replacement: marker + "@")
        for token in tokens(of: stripped) where looksLikeCredential(token) {
            return marker
        }
        return stripped
    }

    /// Removes `user:password@` (or `token@`) from every `scheme://` URL in `text`.
    /// `replacement` stands in its place (empty for remote URLs shown to people).
    public static func stripURLCredentials(_ text: String, replacement: String = "") -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            out.append(bytes[i])
            // After "://": the authority ends at '/', '?', '#' or whitespace; userinfo
            // ends at the last '@' inside it.
            if bytes[i] == 47, i >= 2, bytes[i - 1] == 47, bytes[i - 2] == 58 {
                var end = i + 1
                while end < bytes.count, ![47, 63, 35, 32, 9, 10].contains(bytes[end]) { end += 1 }
                if let at = bytes[(i + 1)..<end].lastIndex(of: 64) {
                    out.append(contentsOf: replacement.utf8)
                    i = at
                }
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The pieces of a value that could each be a credential: split at whitespace and
    /// list separators.
    static func tokens(of value: String) -> [Substring] {
        value.split { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "," || $0 == ";" || $0 == ":" || $0 == "&" || $0 == "?" || $0 == "\"" || $0 == "'" }
    }

    /// Known credential formats, and long high-entropy base64 or hex strings.
    public static func looksLikeCredential(_ token: Substring) -> Bool {
        let t = token.hasPrefix("=") ? token.dropFirst() : token
        let bytes = Array(t.utf8)
        func upperAlnum(_ b: UInt8) -> Bool { (b >= 65 && b <= 90) || (b >= 48 && b <= 57) }
        // AWS access key ids: AKIA / ASIA + 16 upper-case letters or digits.
        if bytes.count >= 20, t.hasPrefix("AKIA") || t.hasPrefix("ASIA"), bytes[4..<20].allSatisfy(upperAlnum) { return true }
        // GitHub, GitLab, Slack, OpenAI-style, Stripe, npm, PyPI, Hugging Face tokens.
        let prefixes = ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xoxb-", "xoxp-", "xoxa-", "xoxs-",
                        "sk-", "sk_live_", "rk_live_", "npm_", "pypi-", "hf_"]
        if let p = prefixes.first(where: { t.hasPrefix($0) }), bytes.count >= p.utf8.count + 16 { return true }
        if t.contains("-----BEGIN") { return true }
        // A JSON Web Token: three base64url parts, the first a JSON header.
        if t.hasPrefix("eyJ"), t.split(separator: ".").count == 3, bytes.count >= 40 { return true }
        return isHighEntropy(bytes)
    }

    /// A run of at least 32 base64/hex characters with letters and digits and high
    /// Shannon entropy: 3 bits per character for hex, 4 for base64 (English words and
    /// paths stay well below; random keys are near 4 and 6).
    static func isHighEntropy(_ raw: [UInt8]) -> Bool {
        var bytes = raw
        while bytes.last == UInt8(ascii: "=") { bytes.removeLast() }
        guard bytes.count >= 32 else { return false }
        var hex = true, letters = false, digits = false
        for b in bytes {
            let isDigit = b >= 48 && b <= 57
            let isLower = b >= 97 && b <= 122, isUpper = b >= 65 && b <= 90
            let isBase64 = isDigit || isLower || isUpper || b == 43 || b == 47 || b == 45 || b == 95
            guard isBase64 else { return false }
            if isDigit { digits = true } else if isLower || isUpper { letters = true }
            if !(isDigit || (b >= 97 && b <= 102) || (b >= 65 && b <= 70)) { hex = false }
        }
        // A path-like value (/usr/local/bin) is not a secret.
        if bytes.first == 47 { return false }
        guard letters && digits else { return false }
        var counts = [Int](repeating: 0, count: 256)
        for b in bytes { counts[Int(b)] += 1 }
        var entropy = 0.0
        let n = Double(bytes.count)
        for c in counts where c > 0 {
            let p = Double(c) / n
            entropy -= p * Glibc.log2(p)
        }
        return entropy >= (hex ? 3.0 : 4.0)
    }
}
