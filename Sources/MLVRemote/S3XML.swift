/// Just enough XML for S3's answers (ListObjectsV2, multipart uploads, errors): find
/// elements by tag name and read their text, decoding the five named entities and numeric
/// character references. No DTDs, no entity expansion beyond those, no recursion, so a
/// hostile server cannot make it blow up.
enum S3XML {
    /// The inner text of every `<tag>...</tag>` in `text`, in order (not nested in each other).
    static func elements(_ tag: String, in text: Substring) -> [Substring] {
        let open = "<\(tag)>", close = "</\(tag)>"
        var result: [Substring] = []
        var rest = text
        while let start = rest.firstRange(of: open) {
            guard let end = rest[start.upperBound...].firstRange(of: close) else { break }
            result.append(rest[start.upperBound..<end.lowerBound])
            rest = rest[end.upperBound...]
        }
        return result
    }

    /// The decoded text of the first `<tag>` in `text`, or nil.
    static func value(_ tag: String, in text: Substring) -> String? {
        elements(tag, in: text).first.map { decode($0) }
    }

    /// Replaces `&amp; &lt; &gt; &quot; &apos;` and `&#N;`/`&#xN;`; anything else stays as it is.
    static func decode(_ text: Substring) -> String {
        guard text.contains("&") else { return String(text) }
        var out = ""
        var rest = text
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            let after = rest[amp...]
            guard let semi = after.firstIndex(of: ";"), after.distance(from: amp, to: semi) <= 10 else {
                out += "&"
                rest = rest[rest.index(after: amp)...]
                continue
            }
            let name = after[after.index(after: amp)..<semi]
            var replacement: String?
            switch name {
            case "amp": replacement = "&"
            case "lt": replacement = "<"
            case "gt": replacement = ">"
            case "quot": replacement = "\""
            case "apos": replacement = "'"
            default:
                if name.hasPrefix("#x") || name.hasPrefix("#X"), let v = UInt32(name.dropFirst(2), radix: 16), let s = Unicode.Scalar(v) {
                    replacement = String(Character(s))
                } else if name.hasPrefix("#"), let v = UInt32(name.dropFirst()), let s = Unicode.Scalar(v) {
                    replacement = String(Character(s))
                }
            }
            if let replacement {
                out += replacement
                rest = after[after.index(after: semi)...]
            } else {
                out += "&"
                rest = rest[rest.index(after: amp)...]
            }
        }
        out += rest
        return out
    }

    /// Escapes text for an element's content.
    static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
