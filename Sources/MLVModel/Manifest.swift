import MLVBasics

/// "This manifest was made from that one": a lineage edge stored in the child.
public struct Input: Sendable, Equatable {
    /// `parent`, `raw`, `code`, `train`, `eval`, ...
    public var role: String
    /// The manifest it points at.
    public var id: ObjectID
    /// The split of that manifest, when only a split was used (`mnist@v2#eval`).
    public var split: String?
    /// What a person typed, e.g. `mnist@v1`; informational.
    public var ref: String?

    public init(role: String, id: ObjectID, split: String? = nil, ref: String? = nil) {
        self.role = role; self.id = id; self.split = split; self.ref = ref
    }

    var json: JSON {
        var o: [String: JSON] = ["role": .string(role), "id": .string(id.hex)]
        if let split { o["split"] = .string(split) }
        if let ref { o["ref"] = .string(ref) }
        return .object(o)
    }

    init(json: JSON) throws {
        guard let role = json["role"]?.string, let hex = json["id"]?.string, let id = ObjectID(hex: hex) else {
            throw ModelError("input without a role and id")
        }
        self.init(role: role, id: id, split: json["split"]?.string, ref: json["ref"]?.string)
    }
}

/// A named subset of a dataset version: the files under `path`, with that subtree's id,
/// so "the exact eval set" is a hashable thing of its own.
public struct Split: Sendable, Equatable {
    public var path: String
    public var tree: ObjectID
    public var files: Int64
    public var bytes: Int64

    public init(path: String, tree: ObjectID, files: Int64, bytes: Int64) {
        self.path = path; self.tree = tree; self.files = files; self.bytes = bytes
    }
}

/// One version of a dataset (`mlv.dataset/1`). The version number is not inside: it is
/// the ref that points here, so a manifest can be renumbered without changing its id.
public struct DatasetManifest: Sendable, Equatable {
    public static let schema = "mlv.dataset/1"

    public var name: String
    public var root: ObjectID
    public var files: Int64
    public var bytes: Int64
    public var inputs: [Input]
    public var splits: [String: Split]
    public var message: String
    public var meta: [String: String]
    public var author: String
    /// RFC 3339 UTC.
    public var created: String
    /// The path it was added from, relative to the repository when inside it.
    public var source: String
    /// The run that wrote it, when it is an output of `mlv run` / `mlv log run`.
    public var run: String?

    public init(name: String, root: ObjectID, files: Int64, bytes: Int64, inputs: [Input], splits: [String: Split],
                message: String, meta: [String: String], author: String, created: String, source: String,
                run: String? = nil) {
        self.name = name; self.root = root; self.files = files; self.bytes = bytes; self.inputs = inputs
        self.splits = splits; self.message = message; self.meta = meta; self.author = author
        self.created = created; self.source = source; self.run = run
    }

    public var json: JSON {
        var fields = versionFields(schema: Self.schema, name: name, root: root, files: files, bytes: bytes, inputs: inputs,
                                   message: message, meta: meta, author: author, created: created, source: source, run: run)
        fields["splits"] = .object(splits.mapValues { s in
            .object(["path": .string(s.path), "tree": .string(s.tree.hex), "files": .int(s.files), "bytes": .int(s.bytes)])
        })
        return .object(fields)
    }

    public func canonicalBytes() -> [UInt8] { json.canonicalBytes() }

    /// Decodes a dataset manifest, checking every field's type.
    /// - Throws: `ModelError` naming the bad field.
    public init(json: JSON) throws {
        guard json["schema"]?.string == Self.schema else {
            throw ModelError("not a dataset manifest (schema \(json["schema"]?.string ?? "missing"))")
        }
        let f = FieldReader(json: json, document: "dataset manifest")
        name = try f.string("name")
        root = try f.id("root")
        files = try f.count("files")
        bytes = try f.count("bytes")
        inputs = try f.inputs()
        guard let splitObject = json["splits"]?.object else { throw ModelError("dataset manifest has no splits") }
        var splits: [String: Split] = [:]
        for (k, v) in splitObject {
            guard let path = v["path"]?.string, let tree = v["tree"]?.string, let fc = v["files"]?.int, let b = v["bytes"]?.int else {
                throw ModelError("split '\(k)' is malformed")
            }
            guard let treeID = ObjectID(hex: tree) else { throw ModelError("split '\(k)' tree is not an object id") }
            splits[k] = Split(path: path, tree: treeID, files: fc, bytes: b)
        }
        self.splits = splits
        message = try f.string("message")
        meta = try f.meta()
        author = try f.string("author")
        created = try f.string("created")
        source = try f.string("source")
        run = try f.runID()
    }
}

/// A snapshot of source files (`mlv.code/1`): the tree of the named files, relative to
/// the repository root. Holds nothing else, so the same code always has the same id.
public struct CodeManifest: Sendable, Equatable {
    public static let schema = "mlv.code/1"
    public var root: ObjectID
    public var paths: [String]

    public init(root: ObjectID, paths: [String]) {
        self.root = root
        self.paths = paths.sorted()
    }

    public var json: JSON {
        .object(["schema": .string(Self.schema), "root": .string(root.hex), "paths": .array(paths.map { .string($0) })])
    }

    public init(json: JSON) throws {
        guard json["schema"]?.string == Self.schema, let hex = json["root"]?.string, let root = ObjectID(hex: hex),
              let paths = json["paths"]?.array?.compactMap(\.string) else {
            throw ModelError("not a code manifest")
        }
        self.init(root: root, paths: paths)
    }
}

/// The fields every version manifest (dataset, model) shares, encoded the one way the
/// format fixes; each kind adds its own fields to the result.
func versionFields(schema: String, name: String, root: ObjectID, files: Int64, bytes: Int64, inputs: [Input],
                   message: String, meta: [String: String], author: String, created: String, source: String,
                   run: String?) -> [String: JSON] {
    var fields: [String: JSON] = [
        "schema": .string(schema),
        "name": .string(name),
        "root": .string(root.hex),
        "files": .int(files),
        "bytes": .int(bytes),
        "inputs": .array(inputs.map(\.json)),
        "message": .string(message),
        "meta": .object(meta.mapValues { .string($0) }),
        "author": .string(author),
        "created": .string(created),
        "source": .string(source),
    ]
    // Present only on outputs of a run, so manifests made without one keep their ids.
    if let run { fields["run"] = .string(run) }
    return fields
}

/// Typed field access for decoding a manifest; every error names the document and field.
struct FieldReader {
    let json: JSON
    let document: String

    func string(_ key: String) throws -> String {
        guard let s = json[key]?.string else { throw ModelError("\(document) field '\(key)' is missing or not a string") }
        return s
    }

    func count(_ key: String) throws -> Int64 {
        guard let i = json[key]?.int, i >= 0 else { throw ModelError("\(document) field '\(key)' is missing or not a count") }
        return i
    }

    func id(_ key: String) throws -> ObjectID {
        guard let id = ObjectID(hex: try string(key)) else { throw ModelError("\(document) field '\(key)' is not an object id") }
        return id
    }

    func inputs() throws -> [Input] {
        guard let list = json["inputs"]?.array else { throw ModelError("\(document) has no inputs list") }
        return try list.map(Input.init(json:))
    }

    func meta() throws -> [String: String] { try stringMap("meta") }

    /// The optional `run` field of a version manifest.
    func runID() throws -> String? {
        guard let run = try optionalString("run") else { return nil }
        guard RunManifest.isRunID(run) else { throw ModelError("\(document) field 'run' is not a run id") }
        return run
    }

    func stringMap(_ key: String) throws -> [String: String] {
        guard let object = json[key]?.object else { throw ModelError("\(document) has no \(key)") }
        return try object.mapValues { v in
            guard let s = v.string else { throw ModelError("\(document) \(key) values must be strings") }
            return s
        }
    }

    func optionalString(_ key: String) throws -> String? {
        guard let v = json[key] else { return nil }
        guard let s = v.string else { throw ModelError("\(document) field '\(key)' is not a string") }
        return s
    }
}

/// Reads the `schema` of any stored manifest.
public func schemaOf(_ json: JSON) -> String? { json["schema"]?.string }
