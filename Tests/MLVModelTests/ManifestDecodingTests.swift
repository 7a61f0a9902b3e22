import MLVBasics
import MLVModel
import Testing

/// Stored manifests and events come from whoever can write the store: each decoder
/// checks every field's type and range and names the bad field, and never traps.
@Suite("manifest decoding: hostile field values")
struct ManifestDecodingTests {
    static let id = SHA256.hash(Array("x".utf8))

    static var dataset: JSON {
        DatasetManifest(name: "d", root: id, files: 1, bytes: 2, inputs: [Input(role: "parent", id: id, ref: "d@v1")],
                        splits: ["s": Split(path: "sub", tree: id, files: 1, bytes: 2)], message: "m", meta: ["k": "v"],
                        author: "a", created: "2026-01-01T00:00:00Z", source: "data").json
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var field: String
        var value: JSON
        var testDescription: String { "\(field) = \(String(decoding: value.canonicalBytes(), as: UTF8.self))" }
    }

    static let cases: [Case] = [
        Case(field: "files", value: .string("1")),
        Case(field: "files", value: .int(-1)),
        Case(field: "files", value: .double(1.5)),
        Case(field: "bytes", value: .int(Int64.min)),
        Case(field: "root", value: .string("not hex")),
        Case(field: "root", value: .int(1)),
        Case(field: "name", value: .array([])),
        Case(field: "inputs", value: .object([:])),
        Case(field: "inputs", value: .array([.string("x")])),
        Case(field: "splits", value: .array([])),
        Case(field: "splits", value: .object(["s": .object(["path": .string("sub")])])),
        Case(field: "meta", value: .object(["k": .int(1)])),
        Case(field: "created", value: .null),
        Case(field: "schema", value: .string("mlv.dataset/2")),
    ]

    @Test(arguments: cases)
    func datasetFieldOfTheWrongTypeIsRefused(_ c: Case) throws {
        #expect(throws: Never.self) { try DatasetManifest(json: Self.dataset) }
        guard case .object(var fields) = Self.dataset else { Issue.record("not an object"); return }
        fields[c.field] = c.value
        let error = #expect(throws: ModelError.self) { try DatasetManifest(json: .object(fields)) }
        let named = c.field == "splits" ? "split" : c.field
        #expect(error?.message.contains(named) == true || c.field == "schema" || c.field == "inputs",
                "\(error?.message ?? "")")
    }

    /// Huge numbers and deep nesting stop at the parser, with its own error.
    @Test func hugeNumbersAndDeepNestingStopAtTheParser() {
        #expect(throws: JSONError.self) { try JSON.parse(Array(#"{"files":99999999999999999999}"#.utf8)) }
        let deep = Array(repeating: UInt8(ascii: "["), count: 100_000) + Array(repeating: UInt8(ascii: "]"), count: 100_000)
        #expect(throws: JSONError.self) { try JSON.parse(deep) }
    }
}
