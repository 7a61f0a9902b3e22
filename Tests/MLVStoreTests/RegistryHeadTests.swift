import MLVBasics
import MLVTestSupport
import Testing

@testable import MLVStore

@Suite("RefStore registry head")
struct RegistryHeadTests {
    private func id(_ n: Int) -> ObjectID { SHA256.hash(Array("event \(n)".utf8)) }

    @Test("the head is created only when expected unset, then moves only from the value read")
    func headMovesByCompareAndSwap() throws {
        let dir = try TemporaryDirectory(prefix: "mlv-head")
        let refs = RefStore(root: dir.appending("refs"))
        #expect(try refs.head(kind: "model", name: "digits") == nil)
        try refs.updateHead(kind: "model", name: "digits", expected: nil, new: id(1))
        #expect(throws: StoreError.self) { try refs.updateHead(kind: "model", name: "digits", expected: nil, new: id(2)) }
        do {
            try refs.updateHead(kind: "model", name: "digits", expected: id(3), new: id(2))
            Issue.record("moved from a value it did not hold")
        } catch StoreError.refChanged(let ref, _, let found) {
            #expect(ref.contains("digits") && found == id(1).short)
        }
        try refs.updateHead(kind: "model", name: "digits", expected: id(1), new: id(2))
        #expect(try refs.head(kind: "model", name: "digits") == id(2))
        #expect(!FS.exists(refs.root + "/model/digits/head.lock"))
        // The head is a ref like any other for fsck and gc.
        #expect(try refs.allRefs().map { FS.baseName(of: $0.path) } == ["head"])
    }

    @Test("latestVersion reads only the highest version and counts them")
    func latestVersion() throws {
        let dir = try TemporaryDirectory(prefix: "mlv-head")
        let refs = RefStore(root: dir.appending("refs"))
        #expect(try refs.latestVersion(kind: "model", name: "digits") == nil)
        for n in 1...12 { _ = try refs.createNextVersion(kind: "model", name: "digits", id: id(n)) }
        let latest = try #require(try refs.latestVersion(kind: "model", name: "digits"))
        #expect(latest.number == 12 && latest.id == id(12) && latest.count == 12)
    }
}
