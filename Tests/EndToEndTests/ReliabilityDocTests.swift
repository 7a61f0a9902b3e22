import MLVBasics
import MLVTestSupport
import Testing

/// `docs/reliability.md` points every case at a test: each named file must exist and
/// define each named test, so the table cannot drift from the suite.
@Suite("docs/reliability.md")
struct ReliabilityDocTests {
    @Test func everyRowNamesATestThatExists() throws {
        // Tests/EndToEndTests/ReliabilityDocTests.swift -> the package root.
        let root = FS.parent(of: FS.parent(of: FS.parent(of: #filePath)))
        let doc = String(decoding: try FS.readFile(root + "/docs/reliability.md"), as: UTF8.self)
        var checked = 0
        for line in doc.split(separator: "\n") where line.hasPrefix("| ") {
            let cells = line.split(separator: "|").map { trim($0) }
            guard let last = cells.last, last.contains(".swift`") else { continue }
            // "`Dir/File.swift` `a`, `b`; `Dir/Other.swift` `c`"
            for group in last.split(separator: ";") {
                // Backquoted spans are the odd-numbered pieces.
                let quoted = group.split(separator: "`", omittingEmptySubsequences: false).enumerated()
                    .filter { $0.offset % 2 == 1 }.map { String($0.element) }
                guard let file = quoted.first, file.hasSuffix(".swift") else {
                    Issue.record("a row without a test file: \(line)")
                    continue
                }
                let path = file.hasPrefix("Fuzz/") ? root + "/" + file : root + "/Tests/" + file
                guard let source = try? FS.readFile(path) else {
                    Issue.record("\(file) does not exist (row: \(line))")
                    continue
                }
                let text = String(decoding: source, as: UTF8.self)
                for name in quoted.dropFirst() where !name.hasPrefix("scripts/") {
                    let bare = name.split(separator: "(").first.map(String.init) ?? name
                    let defined = text.contains("func \(bare)(")
                    #expect(defined, "\(file) has no test '\(name)'")
                    checked += 1
                }
                checked += 1
            }
        }
        #expect(checked > 60, "only \(checked) references found: is the table still there?")
    }
}

private func trim(_ s: Substring) -> String {
    String(s.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
}
