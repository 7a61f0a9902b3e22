import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing

@Suite("resolving refs")
struct ResolveTests {
    func twoDatasets() throws -> TestRepository {
        let t = try TestRepository()
        try t.write("a", ["x.txt": "x\n"])
        try t.write("b", ["y.txt": "y\n"])
        try t.add("mnist", "a")
        try t.write("a/x.txt", "x2\n")
        try t.add("mnist", "a")
        try t.add("cifar10", "b")
        return t
    }

    @Test func versionsAliasesKindsAndLatest() throws {
        let t = try twoDatasets()
        let r = t.repository
        let v = try r.versions(of: "mnist")
        #expect(v.map(\.version) == [1, 2])
        #expect(try r.resolve("mnist@v1").id == v[0].id)
        #expect(try r.resolve("mnist").id == v[1].id)
        #expect(try r.resolve("mnist@latest").id == v[1].id)
        #expect(try r.resolve("dataset:mnist@v1").id == v[0].id)
        #expect(try r.datasets().map { "\($0.name)@v\($0.version)" } == ["cifar10@v1", "mnist@v2"])
    }

    @Test func uniqueIdPrefixResolves() throws {
        let t = try twoDatasets()
        let v1 = try t.repository.resolve("mnist@v1")
        for n in [6, 9, 64] {
            let r = try t.repository.resolve(String(v1.id.hex.prefix(n)))
            #expect(r.name == "mnist" && r.version == 1 && r.id == v1.id)
        }
    }

    @Test func prefixShorterThanSixIsANameNotAnId() throws {
        let t = try twoDatasets()
        let short = String(try t.repository.resolve("mnist@v1").id.hex.prefix(5))
        expectMLVError({ if case .unknownRef = $0 { true } else { false } }, mentions: ["'\(short)'"]) {
            try t.repository.resolve(short)
        }
    }

    @Test func aHexLookingDatasetNameIsAName() throws {
        let t = try TestRepository()
        try t.write("a", ["x.txt": "x\n"])
        try t.add("decade", "a")
        #expect(try t.repository.resolve("decade").name == "decade")
    }

    /// Two manifests whose ids share their first six hex digits (found by a birthday
    /// search over the message text): six digits are ambiguous, more are not.
    @Test func ambiguousPrefixListsTheCandidates() throws {
        let t = try TestRepository()
        try t.write("a", ["x.txt": "x\n"])
        let base = try t.repository.datasetManifest(try t.add("amb", "a").id)

        var m = base
        m.message = "0000000000"
        let template = m.canonicalBytes()
        let marker = Array(#""message":"0000000000""#.utf8)
        let at = try #require(template.indices.first { template[$0...].starts(with: marker) }) + marker.count - 11
        var seen: [String: [UInt8]] = [:]
        var pair: ([UInt8], [UInt8])?
        var bytes = template
        for counter in 0..<400_000 where pair == nil {
            var n = counter
            for i in (0..<10).reversed() { bytes[at + i] = UInt8(48 + n % 10); n /= 10 }
            let key = String(SHA256.hash(bytes).hex.prefix(6))
            if let other = seen[key] { pair = (other, bytes) } else { seen[key] = bytes }
        }
        let (first, second) = try #require(pair)
        let writer = t.repository.objects.writer()
        var ids: [ObjectID] = []
        for b in [first, second] {
            // Still a valid, canonical manifest after the edit.
            #expect(try DatasetManifest(json: try JSON.parse(b)).canonicalBytes() == b)
            ids.append(SHA256.hash(b))
            try writer.put(ids.last!, kind: .manifest, bytes: b, compression: .always)
        }
        try writer.commit()
        for id in ids { _ = try t.repository.refs.createNextVersion(kind: "dataset", name: "amb", id: id) }
        #expect(t.repository.fsck().isClean)

        let prefix = String(ids[0].hex.prefix(6))
        expectMLVError({ if case .ambiguousPrefix(_, let c) = $0 { c.count == 2 } else { false } },
                       mentions: [prefix, "amb@v2", "amb@v3", ids[0].short, ids[1].short]) {
            try t.repository.resolve(prefix)
        }
        let common = zip(ids[0].hex, ids[1].hex).prefix { $0 == $1 }.count
        #expect(try t.repository.resolve(String(ids[1].hex.prefix(common + 1))).version == 3)
    }

    @Test func misspeltNameSuggestsCloseOnes() throws {
        let t = try twoDatasets()
        let e = expectMLVError({ if case .unknownRef(_, let s) = $0 { s.first == "mnist" } else { false } },
                               mentions: ["'mnsit'", "did you mean mnist"]) {
            try t.repository.resolve("mnsit")
        }
        if case .unknownRef(_, let s)? = e { #expect(!s.contains("cifar10")) }
        expectMLVError({ if case .unknownRef = $0 { true } else { false } }, mentions: ["mnis", "mnist"]) {
            try t.repository.resolve("mnis@v1")
        }
        expectMLVError({ if case .unknownRef = $0 { true } else { false } }, mentions: ["mnst", "mnist"]) {
            try t.repository.status(dataset: "mnst")
        }
    }

    @Test func unknownVersionNamesTheRangeThatExists() throws {
        let t = try twoDatasets()
        expectMLVError({ if case .unknownRef = $0 { true } else { false } }, mentions: ["'mnist@v3'", "mnist@v1", "mnist@v2"]) {
            try t.repository.resolve("mnist@v3")
        }
    }

    @Test func unknownAliasSuggestsLatest() throws {
        let t = try twoDatasets()
        expectMLVError({ if case .unknownRef = $0 { true } else { false } }, mentions: ["'mnist@production'", "mnist@latest"]) {
            try t.repository.resolve("mnist@production")
        }
    }

    @Test func malformedRefsAreRefusedNamingTheText() throws {
        let t = try twoDatasets()
        for text in ["MNIST", "mnist@", "mnist#", "mnist@v0", "model:mnist@v1x", "wat:mnist", "mnist@V1"] {
            expectMLVError({ if case .invalidArgument = $0 { true } else if case .unknownRef = $0 { true } else { false } },
                           mentions: [text]) {
                try t.repository.resolve(text)
            }
        }
    }
}
