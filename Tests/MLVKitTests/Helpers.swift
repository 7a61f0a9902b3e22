import MLVBasics
@testable import MLVKit
import MLVModel
import MLVStore
import MLVTestSupport
import Testing

/// Runs `body`, expecting an `MLVError` that `matches` and whose description contains
/// every string in `mentions`. Returns the error for further checks.
@discardableResult
func expectMLVError<T>(
    _ matches: (MLVError) -> Bool, mentions: [String] = [],
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> T
) -> MLVError? {
    do {
        let value = try body()
        Issue.record("expected an MLVError, got \(value)", sourceLocation: sourceLocation)
        return nil
    } catch let e as MLVError {
        #expect(matches(e), "unexpected error case: \(e)", sourceLocation: sourceLocation)
        for m in mentions {
            #expect(e.description.contains(m), "'\(e.description)' does not mention '\(m)'", sourceLocation: sourceLocation)
        }
        return e
    } catch {
        Issue.record("expected an MLVError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Checks that a failed operation recorded nothing: same refs, same pack indexes, and a
/// clean fsck.
func expectNothingRecorded(_ t: TestRepository, since before: RecordedState,
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(try t.recorded() == before, sourceLocation: sourceLocation)
    let report = t.repository.fsck()
    #expect(report.isClean, "\(report.problems)", sourceLocation: sourceLocation)
}

/// Writes a hand-made tree (and the blobs its file entries need) with a manifest and
/// the next version ref of `name`, bypassing every check `add` makes, as a hostile or
/// buggy writer to a shared store could. Returns the manifest id.
@discardableResult
func commitHandMadeVersion(_ repo: Repository, name: String, root: Tree, subtrees: [Tree] = [],
                           blobs: [[UInt8]] = []) throws -> ObjectID {
    let writer = repo.objects.writer()
    for b in blobs {
        try writer.put(SHA256.hash(b), kind: .chunk, bytes: b, compression: .never)
    }
    for t in subtrees + [root] {
        let bytes = t.canonicalBytes()
        try writer.put(SHA256.hash(bytes), kind: .tree, bytes: bytes, compression: .always)
    }
    let manifest = DatasetManifest(
        name: name, root: root.id, files: Int64(root.entries.count), bytes: root.totalSize, inputs: [], splits: [:],
        message: "hand-made", meta: [:], author: "test@example", created: "2026-01-01T00:00:00Z", source: "elsewhere")
    let bytes = manifest.canonicalBytes()
    let id = SHA256.hash(bytes)
    try writer.put(id, kind: .manifest, bytes: bytes, compression: .always)
    try writer.commit()
    _ = try repo.refs.createNextVersion(kind: "dataset", name: name, id: id)
    return id
}

/// A file entry for a hand-made tree.
func fileEntry(_ name: String, _ bytes: [UInt8], mode: UInt32 = 0o644) -> Tree.Entry {
    Tree.Entry(name: name, kind: .file, mode: mode, size: Int64(bytes.count), id: SHA256.hash(bytes))
}

/// A directory entry for a hand-made tree.
func dirEntry(_ name: String, _ tree: Tree) -> Tree.Entry {
    Tree.Entry(name: name, kind: .dir, mode: 0o755, size: tree.totalSize, id: tree.id)
}

/// The (only) pack index entries of a kind, with their pack file.
func packRecords(_ repo: Repository, kind: ObjectKind) -> [(pack: String, entry: IndexEntry)] {
    repo.objects.packIndexes.flatMap { index in
        index.entries.filter { $0.kind == kind }.map { (index.packPath, $0) }
    }
}

extension MLVError {
    var isUnsafePath: Bool {
        if case .unsafePath = self { return true }
        return false
    }

    var isDamage: Bool {
        switch self {
        case .damaged: return true
        case .store(let s):
            switch s {
            case .corruptObject, .missingObject, .corruptFile, .badRef: return true
            default: return false
            }
        default: return false
        }
    }
}
