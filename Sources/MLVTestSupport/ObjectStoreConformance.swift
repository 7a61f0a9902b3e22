import MLVBasics
import MLVStore
import Testing

/// One object store under test, as the conformance checks see it.
public struct ObjectStoreHarness {
    /// The store whose reads are checked; empty when the harness is made.
    public var store: any ObjectStore
    /// A new writer into `store`.
    public var makeWriter: () throws -> any ObjectWriter
    /// A second view of everything committed to `store`, opened afresh where the backend
    /// keeps its data outside the process.
    public var reopen: () throws -> any ObjectStore
    /// Damages the kept bytes of a committed object so that reading it must fail.
    public var corrupt: (ObjectID) throws -> Void

    public init(
        store: any ObjectStore, makeWriter: @escaping () throws -> any ObjectWriter,
        reopen: @escaping () throws -> any ObjectStore, corrupt: @escaping (ObjectID) throws -> Void
    ) {
        self.store = store
        self.makeWriter = makeWriter
        self.reopen = reopen
        self.corrupt = corrupt
    }
}

/// The behaviour every `ObjectStore` and its `ObjectWriter` must show, as checks that take
/// a factory of fresh, empty stores (restic's `internal/backend/test/suite.go` idea).
///
/// Run every check against a backend with
/// `@Test(arguments: ObjectStoreConformance.checks) func f(_ c: ...Check) throws { try c.run(factory) }`.
public enum ObjectStoreConformance {
    public typealias Factory = () throws -> ObjectStoreHarness
    public typealias Check = ConformanceCheck<ObjectStoreHarness>

    public static let checks: [Check] = [
        Check("every kind round trips", roundTripEveryKind),
        Check("every compression policy gives back the same bytes", compressionPolicies),
        Check("a second put in one writer writes nothing", dedupWithinWriter),
        Check("a put of a committed object writes nothing", dedupAcrossWriters),
        Check("concurrent puts of one id store it once", concurrentDedup),
        Check("objects are visible only after commit", visibilityAfterCommit),
        Check("a missing object's error names its id", missingObject),
        Check("damaged bytes are detected on read", corruptionDetected),
        Check("large and empty objects", largeAndEmptyObjects),
        Check("20,000 objects are all found", manyObjects),
        Check("info gives the kind and raw size", infoKindAndSize),
    ]

    static let kinds: [ObjectKind] = [.chunk, .chunkList, .tree, .manifest]
    static let policies: [CompressionPolicy] = [.never, .auto, .always]

    // MARK: checks

    /// put, commit, read for every kind, with text and random content.
    public static func roundTripEveryKind(_ make: Factory) throws {
        let h = try make()
        let writer = try h.makeWriter()
        var objects: [Sample] = []
        for (i, kind) in kinds.enumerated() {
            objects.append(Sample(kind: kind, bytes: text(count: 2000 + i, seed: UInt64(i))))
            objects.append(Sample(kind: kind, bytes: splitmix64Bytes(seed: UInt64(100 + i), count: 3000 + i)))
        }
        for o in objects {
            #expect(try writer.put(o.id, kind: o.kind, bytes: o.bytes, compression: .auto) > 0)
        }
        try writer.commit()
        for store in [h.store, try h.reopen()] {
            for o in objects { try expectStored(store, o) }
        }
    }

    /// Every policy on text, random, zero and tiny content reads back byte for byte.
    public static func compressionPolicies(_ make: Factory) throws {
        let h = try make()
        let writer = try h.makeWriter()
        var objects: [(Sample, CompressionPolicy)] = []
        for (p, policy) in policies.enumerated() {
            for (k, kind) in kinds.enumerated() {
                let n = p * 10 + k
                let contents: [[UInt8]] = [
                    text(count: 5000 + n, seed: UInt64(n)),
                    splitmix64Bytes(seed: UInt64(1000 + n), count: 5000 + n),
                    [UInt8](repeating: 0, count: 70_000 + n),
                    Array(splitmix64Bytes(seed: UInt64(2000 + n), count: 1 + n % 7)),
                ]
                for bytes in contents { objects.append((Sample(kind: kind, bytes: bytes), policy)) }
            }
        }
        for (o, policy) in objects {
            #expect(try writer.put(o.id, kind: o.kind, bytes: o.bytes, compression: policy) > 0)
        }
        try writer.commit()
        for (o, _) in objects { try expectStored(h.store, o) }
    }

    /// The same id put twice into one writer, under any policy, is written once.
    public static func dedupWithinWriter(_ make: Factory) throws {
        let h = try make()
        let writer = try h.makeWriter()
        let o = Sample(kind: .chunk, bytes: splitmix64Bytes(seed: 7, count: 10_000))
        #expect(try writer.put(o.id, kind: o.kind, bytes: o.bytes, compression: .never) > 0)
        for policy in policies {
            #expect(try writer.put(o.id, kind: o.kind, bytes: o.bytes, compression: policy) == 0)
        }
        #expect(writer.has(o.id))
        try writer.commit()
        try expectStored(h.store, o)
        #expect(try writer.put(o.id, kind: o.kind, bytes: o.bytes, compression: .never) == 0)
    }

    /// A writer made after a commit sees the committed objects and skips them.
    public static func dedupAcrossWriters(_ make: Factory) throws {
        let h = try make()
        let o = Sample(kind: .tree, bytes: text(count: 4000, seed: 3))
        let first = try h.makeWriter()
        #expect(try first.put(o.id, kind: o.kind, bytes: o.bytes, compression: .always) > 0)
        try first.commit()
        let second = try h.makeWriter()
        #expect(second.has(o.id))
        #expect(try second.put(o.id, kind: o.kind, bytes: o.bytes, compression: .always) == 0)
        try second.commit()
        try expectStored(h.store, o)
    }

    /// Four threads put the same 500 objects, each thread in its own order (the strides
    /// are coprime with 500); each object is written once.
    public static func concurrentDedup(_ make: Factory) throws {
        let h = try make()
        let writer = try h.makeWriter()
        let objects = (0..<500).map { i in
            Sample(kind: .chunk, bytes: splitmix64Bytes(seed: UInt64(50_000 + i), count: 64 + i))
        }
        let newWrites = AtomicCounter()
        let failures = Locked<[String]>([])
        Parallel.workers(4) { worker in
            for step in 0..<objects.count {
                let o = objects[(step * [1, 3, 7, 9][worker] + worker * 97) % objects.count]
                do {
                    if try writer.put(o.id, kind: o.kind, bytes: o.bytes, compression: .auto) > 0 { newWrites.add(1) }
                } catch {
                    failures.withLock { $0.append("\(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(newWrites.current == objects.count)
        try writer.commit()
        for o in objects { try expectStored(h.store, o) }
    }

    /// Before commit the writer has the object and the store does not; after, both do.
    public static func visibilityAfterCommit(_ make: Factory) throws {
        let h = try make()
        let writer = try h.makeWriter()
        let o = Sample(kind: .manifest, bytes: text(count: 900, seed: 11))
        try writer.put(o.id, kind: o.kind, bytes: o.bytes, compression: .always)
        #expect(writer.has(o.id))
        #expect(!h.store.contains(o.id))
        #expect(h.store.info(o.id) == nil)
        try expectMissing(h.store, o.id)
        #expect(!(try h.reopen().contains(o.id)))

        try writer.commit()
        #expect(h.store.contains(o.id))
        #expect(try h.reopen().contains(o.id))
        #expect(try h.makeWriter().has(o.id))

        // The writer keeps working after a commit, and an empty commit is harmless.
        let later = Sample(kind: .chunk, bytes: splitmix64Bytes(seed: 12, count: 900))
        try writer.put(later.id, kind: later.kind, bytes: later.bytes, compression: .never)
        #expect(!h.store.contains(later.id))
        try writer.commit()
        try writer.commit()
        try expectStored(h.store, o)
        try expectStored(h.store, later)
    }

    /// Reading an id never stored throws `missingObject` naming it.
    public static func missingObject(_ make: Factory) throws {
        let h = try make()
        let stored = Sample(kind: .chunk, bytes: splitmix64Bytes(seed: 13, count: 100))
        let writer = try h.makeWriter()
        try writer.put(stored.id, kind: stored.kind, bytes: stored.bytes, compression: .never)
        try writer.commit()
        let absent = SHA256.hash(Array("never stored".utf8))
        #expect(!h.store.contains(absent))
        #expect(h.store.info(absent) == nil)
        try expectMissing(h.store, absent)
    }

    /// A damaged object fails its read with `corruptObject` naming it; its neighbours still read.
    public static func corruptionDetected(_ make: Factory) throws {
        let h = try make()
        let writer = try h.makeWriter()
        let raw = Sample(kind: .chunk, bytes: splitmix64Bytes(seed: 17, count: 4096))
        let compressed = Sample(kind: .tree, bytes: text(count: 4096, seed: 17))
        let manifest = Sample(kind: .manifest, bytes: text(count: 300, seed: 18))
        let intact = Sample(kind: .chunk, bytes: splitmix64Bytes(seed: 19, count: 4096))
        try writer.put(raw.id, kind: raw.kind, bytes: raw.bytes, compression: .never)
        try writer.put(compressed.id, kind: compressed.kind, bytes: compressed.bytes, compression: .always)
        try writer.put(manifest.id, kind: manifest.kind, bytes: manifest.bytes, compression: .never)
        try writer.put(intact.id, kind: intact.kind, bytes: intact.bytes, compression: .never)
        try writer.commit()
        for damaged in [raw, compressed, manifest] {
            try h.corrupt(damaged.id)
            let error = #expect(throws: StoreError.self) { try h.store.read(damaged.id) }
            guard case .corruptObject(let id, _, _)? = error else {
                Issue.record("expected corruptObject for \(damaged.id.short), got \(String(describing: error))")
                continue
            }
            #expect(id == damaged.id)
            #expect("\(error!)".contains(damaged.id.hex))
        }
        try expectStored(h.store, intact)
    }

    /// A 5 MiB object of each content type, and the empty object.
    public static func largeAndEmptyObjects(_ make: Factory) throws {
        let h = try make()
        let writer = try h.makeWriter()
        let size = 5 << 20
        let large: [(Sample, CompressionPolicy)] = [
            (Sample(kind: .chunk, bytes: splitmix64Bytes(seed: 23, count: size)), .auto),
            (Sample(kind: .chunk, bytes: text(count: size, seed: 23)), .auto),
            (Sample(kind: .chunk, bytes: [UInt8](repeating: 0, count: size)), .always),
        ]
        for (o, policy) in large {
            #expect(try writer.put(o.id, kind: o.kind, bytes: o.bytes, compression: policy) > 0)
        }
        // `.always` on the empty object is left out: PackWriter traps on it (see
        // PackStoreTests, "empty object with .always").
        let empty = Sample(kind: .chunk, bytes: [])
        #expect(empty.id.hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        try writer.put(empty.id, kind: empty.kind, bytes: empty.bytes, compression: .never)
        #expect(try writer.put(empty.id, kind: empty.kind, bytes: empty.bytes, compression: .auto) == 0)
        try writer.commit()
        for store in [h.store, try h.reopen()] {
            for (o, _) in large { try expectStored(store, o) }
            try expectStored(store, empty)
        }
    }

    /// 20,000 small objects over two commits, put from two threads, are all found; ids
    /// never stored are not.
    public static func manyObjects(_ make: Factory) throws {
        let h = try make()
        let count = 20_000
        let objects = (0..<count).map { i in
            var bytes: [UInt8] = []
            bytes.appendLE(UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
            bytes.append(contentsOf: repeatElement(UInt8(truncatingIfNeeded: i), count: i % 24))
            return Sample(kind: .chunk, bytes: bytes)
        }
        for half in [0..<(count / 2), (count / 2)..<count] {
            let writer = try h.makeWriter()
            try Parallel.forEach(half.count, workers: 2) { i in
                let o = objects[half.lowerBound + i]
                try writer.put(o.id, kind: o.kind, bytes: o.bytes, compression: .auto)
            }
            try writer.commit()
        }
        let reopened = try h.reopen()
        var missing = 0, wrong = 0
        for o in objects {
            guard reopened.contains(o.id), let got = try? reopened.read(o.id) else { missing += 1; continue }
            if got.bytes != o.bytes || got.kind != o.kind { wrong += 1 }
        }
        #expect(missing == 0)
        #expect(wrong == 0)
        let strangers = (0..<1000).filter { i in
            h.store.contains(SHA256.hash(Array("stranger \(i)".utf8)))
        }
        #expect(strangers == [])
    }

    /// `info` reports the kind and the raw (not the stored) size.
    public static func infoKindAndSize(_ make: Factory) throws {
        let h = try make()
        let writer = try h.makeWriter()
        let objects = kinds.enumerated().map { i, kind in
            Sample(kind: kind, bytes: text(count: 10_000 * (i + 1), seed: UInt64(30 + i)))
        }
        for o in objects { try writer.put(o.id, kind: o.kind, bytes: o.bytes, compression: .always) }
        try writer.commit()
        for o in objects {
            let info = h.store.info(o.id)
            #expect(info?.kind == o.kind)
            #expect(info?.size == o.bytes.count)
        }
    }

    // MARK: helpers

    /// An object with its id: the SHA-256 of its bytes, except for chunk lists, whose id
    /// is the blob's (here the SHA-256 of the bytes with a byte appended).
    struct Sample {
        var id: ObjectID
        var kind: ObjectKind
        var bytes: [UInt8]

        init(kind: ObjectKind, bytes: [UInt8]) {
            self.kind = kind
            self.bytes = bytes
            id = kind.isSelfHashed ? SHA256.hash(bytes) : SHA256.hash(bytes + [0xB1])
        }
    }

    /// `count` bytes of CSV-like text that deflate shrinks well.
    static func text(count: Int, seed: UInt64) -> [UInt8] {
        var block: [UInt8] = []
        var row = seed
        while block.count < min(count, 1 << 16) {
            row = row &* 6364136223846793005 &+ 1442695040888963407
            block.append(contentsOf: "\(row >> 48),sample-\(row >> 60),\((row >> 32) & 0xFFF).5,ok\n".utf8)
        }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count { out.append(contentsOf: block.prefix(count - out.count)) }
        return out
    }

    static func expectStored(_ store: any ObjectStore, _ o: Sample, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(store.contains(o.id), "\(o.id.short) not found", sourceLocation: sourceLocation)
        let info = store.info(o.id)
        #expect(info?.kind == o.kind, sourceLocation: sourceLocation)
        #expect(info?.size == o.bytes.count, sourceLocation: sourceLocation)
        let got = try store.read(o.id)
        #expect(got.kind == o.kind, sourceLocation: sourceLocation)
        let same = got.bytes == o.bytes
        #expect(same, "\(o.id.short): read \(got.bytes.count) bytes, stored \(o.bytes.count)", sourceLocation: sourceLocation)
    }

    static func expectMissing(_ store: any ObjectStore, _ id: ObjectID, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let error = #expect(throws: StoreError.self, sourceLocation: sourceLocation) { try store.read(id) }
        guard case .missingObject(let missing)? = error else {
            Issue.record("expected missingObject, got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        #expect(missing == id, sourceLocation: sourceLocation)
        #expect("\(error!)".contains(id.hex), sourceLocation: sourceLocation)
    }
}
