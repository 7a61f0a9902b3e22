import MLVBasics

/// One version of a model (`mlv.model/1`): the tree of the file or directory added, the
/// inputs it was made from (datasets with roles such as `train`, `eval`), and who made it
/// when. Like a dataset manifest, the version number is the ref, not a field.
public struct ModelManifest: Sendable, Equatable {
    public static let schema = "mlv.model/1"

    public var name: String
    public var root: ObjectID
    public var files: Int64
    public var bytes: Int64
    public var inputs: [Input]
    public var message: String
    public var meta: [String: String]
    public var author: String
    /// RFC 3339 UTC.
    public var created: String
    /// The path it was added from, relative to the repository when inside it.
    public var source: String
    /// The run that wrote it, when it is an output of `mlv run` / `mlv log run`.
    public var run: String?

    public init(name: String, root: ObjectID, files: Int64, bytes: Int64, inputs: [Input], message: String,
                meta: [String: String], author: String, created: String, source: String, run: String? = nil) {
        self.name = name; self.root = root; self.files = files; self.bytes = bytes; self.inputs = inputs
        self.message = message; self.meta = meta; self.author = author; self.created = created; self.source = source
        self.run = run
    }

    public var json: JSON {
        .object(versionFields(schema: Self.schema, name: name, root: root, files: files, bytes: bytes, inputs: inputs,
                              message: message, meta: meta, author: author, created: created, source: source, run: run))
    }

    public func canonicalBytes() -> [UInt8] { json.canonicalBytes() }

    /// Decodes a model manifest, checking every field's type.
    /// - Throws: `ModelError` naming the bad field.
    public init(json: JSON) throws {
        guard json["schema"]?.string == Self.schema else {
            throw ModelError("not a model manifest (schema \(json["schema"]?.string ?? "missing"))")
        }
        let f = FieldReader(json: json, document: "model manifest")
        name = try f.string("name")
        root = try f.id("root")
        files = try f.count("files")
        bytes = try f.count("bytes")
        inputs = try f.inputs()
        message = try f.string("message")
        meta = try f.meta()
        author = try f.string("author")
        created = try f.string("created")
        source = try f.string("source")
        run = try f.runID()
    }
}
