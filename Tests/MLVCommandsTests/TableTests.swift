@testable import MLVCommands
import Testing

/// Column layout for human output: widths count characters, not bytes, so non-ASCII
/// cells line up; the last column is not padded.
@Suite("table layout")
struct TableTests {
    @Test func columnsAlignByCharacters() {
        let wide: String = String(repeating: "w", count: 40)
        let rows: [[String]] = [["NAME", "BY", "NOTE"], ["zoë", "a", "x"], ["digits-long", "👩‍🔬", ""], ["e\u{301}", wide, "end"]]
        let lines: [String] = table(rows).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let expected: [String] = [
            "NAME         BY" + String(repeating: " ", count: 40) + "NOTE",
            "zoë          a" + String(repeating: " ", count: 41) + "x",
            "digits-long  👩‍🔬" + String(repeating: " ", count: 41),
            "e\u{301}            " + wide + "  end",
        ]
        #expect(lines == expected)
        #expect(table([]) == "")
        #expect(displayWidth("zoë") == 3 && displayWidth("abc") == 3 && displayWidth("") == 0)
    }
}
