import MLVBasics
import MLVTestSupport
import Testing

@testable import MLVStore

/// Fresh, empty stores of each kind for the conformance suite.
enum Backends {
    static func inMemory() -> ObjectStoreHarness {
        let store = InMemoryObjectStore()
        return ObjectStoreHarness(
            store: store, makeWriter: { store }, reopen: { store },
            corrupt: { id in
                guard store.corrupt(id) else { throw StoreError.missingObject(id) }
            })
    }

    /// A `PackStore` in its own temporary directory, which lives as long as the harness.
    static func packStore() throws -> ObjectStoreHarness {
        let directory = try TemporaryDirectory(prefix: "mlv-conformance")
        let store = try PackStore(directory: directory.path)
        return ObjectStoreHarness(
            store: store, makeWriter: { store.writer() },
            reopen: { try PackStore(directory: directory.path) },
            corrupt: { id in try PackDamage.flipPayload(of: id, in: store) })
    }
}

@Suite("ObjectStore conformance")
struct ObjectStoreConformanceTests {
    @Test("InMemoryObjectStore", arguments: ObjectStoreConformance.checks)
    func inMemory(_ check: ObjectStoreConformance.Check) throws {
        try check.run(Backends.inMemory)
    }

    @Test("PackStore", arguments: ObjectStoreConformance.checks)
    func packStore(_ check: ObjectStoreConformance.Check) throws {
        try check.run(Backends.packStore)
    }
}
