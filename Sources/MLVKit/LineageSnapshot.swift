import MLVBasics

/// Everything a walk over a large part of the history needs from the index, in memory:
/// every node's row, column by column, and the edges by handle both ways. Built by
/// reading the node and edge tables whole, and kept in the index as one blob (table
/// `snapshot`, tagged with the index generation it was read at), so the next large walk
/// reads one blob instead of two tables.
struct WholeLineage {
    var rows: LineageRows
    /// Row number by handle (-1: none).
    var rowOf: [Int32]
    var up: Adjacency
    var down: Adjacency

    /// Bumped when the encoding changes; a blob of another format is read as absent.
    static let format: Int64 = 1

    /// The blob: the format, then each array as its element count and its bytes.
    func encoded() -> [UInt8] {
        var w = BinaryWriter()
        w.out.reserveCapacity(rows.bytes.count + rows.count * 48 + (up.other.count + down.other.count) * 8 + rowOf.count * 12)
        w.put([Self.format])
        rows.encode(into: &w)
        w.put(rowOf)
        for a in [up, down] {
            w.put(a.start)
            w.put(a.other)
            w.put(a.label)
        }
        return w.out
    }

    /// Decodes `encoded()`; nil for a blob of another format or a damaged one.
    init?(decoding blob: UnsafeRawBufferPointer) {
        self.init(reading: BinaryReader(blob: blob))
    }

    /// Decodes what `reader` reads; nil for another format or a damaged blob.
    init?(reading reader: BinaryReader) {
        var r = reader
        guard let format: [Int64] = r.get(), format == [Self.format] else { return nil }
        guard let rows = LineageRows(reading: &r), let rowOf: [Int32] = r.get(),
              rowOf.allSatisfy({ $0 >= -1 && Int($0) < rows.count }) else { return nil }
        var adjacency: [Adjacency] = []
        for down in [false, true] {
            guard let start: [Int32] = r.get(), let other: [Int32] = r.get(), let label: [Int32] = r.get(),
                  start.count == rowOf.count + 1, other.count == label.count,
                  start.first == 0, start.last.map({ Int($0) == other.count }) == true,
                  zip(start, start.dropFirst()).allSatisfy({ $0 <= $1 }),
                  other.allSatisfy({ $0 >= 0 && Int($0) < rowOf.count }) else { return nil }
            adjacency.append(Adjacency(start: start, other: other, label: label, down: down))
        }
        guard r.atEnd else { return nil }
        self.rows = rows
        self.rowOf = rowOf
        up = adjacency[0]
        down = adjacency[1]
    }

    init(rows: LineageRows, rowOf: [Int32], up: Adjacency, down: Adjacency) {
        self.rows = rows
        self.rowOf = rowOf
        self.up = up
        self.down = down
    }
}

extension LineageRows {
    /// Writes every column (the text bytes, spans, kinds, names, versions).
    func encode(into w: inout BinaryWriter) {
        w.put(bytes)
        for spans in [key, created, id, root, commit] { w.put(spans) }
        w.put(kind)
        w.put(name)
        w.put(version)
        w.put(Array(names.joined(separator: "\u{0}").utf8))
        w.put([Int64(names.count), ascii ? 1 : 0])
    }

    /// Reads what `encode(into:)` wrote; nil when it is short, or a span or index points
    /// outside what it points into.
    init?(reading r: inout BinaryReader) {
        self.init()
        guard let bytes: [UInt8] = r.get(), let key: [ByteSpan] = r.get(), let created: [ByteSpan] = r.get(),
              let id: [ByteSpan] = r.get(), let root: [ByteSpan] = r.get(), let commit: [ByteSpan] = r.get(),
              let kind: [Int8] = r.get(), let name: [Int32] = r.get(), let version: [Int32] = r.get(),
              let names: [UInt8] = r.get(), let counts: [Int64] = r.get(), counts.count == 2 else { return nil }
        let n = key.count
        guard [created.count, id.count, root.count, commit.count, kind.count, name.count, version.count].allSatisfy({ $0 == n })
        else { return nil }
        self.bytes = bytes
        (self.key, self.created, self.id, self.root, self.commit) = (key, created, id, root, commit)
        (self.kind, self.name, self.version) = (kind, name, version)
        self.names = counts[0] == 0 ? [] : names.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard self.names.count == Int(counts[0]) else { return nil }
        for (i, s) in self.names.enumerated() { nameIndex[s] = Int32(i) }
        ascii = counts[1] == 1
        // Every span and index must land inside what it points into.
        let size = Int64(bytes.count)
        for spans in [key, created, id, root, commit] {
            guard spans.allSatisfy({ $0.count < 0 || ($0.start >= 0 && Int64($0.start) + Int64($0.count) <= size) }) else { return nil }
        }
        guard name.allSatisfy({ $0 >= -1 && Int($0) < self.names.count }), kind.allSatisfy({ $0 >= -1 && $0 < 4 }) else { return nil }
    }
}

/// Appends arrays of plain values as (count, bytes).
struct BinaryWriter {
    var out: [UInt8] = []

    mutating func put<T: BitwiseCopyable>(_ values: [T]) {
        withUnsafeBytes(of: Int64(values.count).littleEndian) { out.append(contentsOf: $0) }
        values.withUnsafeBytes { out.append(contentsOf: $0) }
    }
}

/// Reads what `BinaryWriter` wrote, from memory or piece by piece from a SQLite blob;
/// nil when it runs short or a read fails.
struct BinaryReader {
    let count: Int
    let read: (UnsafeMutableRawPointer, Int, Int) throws -> Void
    var at = 0

    init(blob: UnsafeRawBufferPointer) {
        count = blob.count
        read = { p, n, offset in p.copyMemory(from: blob.baseAddress! + offset, byteCount: n) }
    }

    init(blob: SQLiteBlob) {
        count = blob.count
        read = { p, n, offset in try blob.read(into: p, count: n, at: offset) }
    }

    var atEnd: Bool { at == count }

    mutating func get<T: BitwiseCopyable>() -> [T]? {
        guard count - at >= 8 else { return nil }
        var raw: Int64 = 0
        guard (try? read(&raw, 8, at)) != nil else { return nil }
        let n64 = Int64(littleEndian: raw)
        at += 8
        let size = MemoryLayout<T>.stride
        guard n64 >= 0, n64 <= Int64(count - at) / Int64(max(size, 1)) else { return nil }
        let n = Int(n64)
        var failed = false
        let values = [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            if n > 0, (try? read(UnsafeMutableRawPointer(buffer.baseAddress!), n * size, at)) == nil {
                failed = true
                initialized = 0
                return
            }
            initialized = n
        }
        guard !failed else { return nil }
        at += n * size
        return values
    }
}

/// What one sync changed in the node and edge tables: the rows it inserted or updated
/// (with their handles) and the edges it inserted. While a snapshot is current, each
/// changing sync stores its delta in the index (table `snapshot_delta`, keyed by the
/// generation the sync moved the index to), so the next large walk reads the snapshot
/// and the deltas since it instead of the whole tables.
struct LineageDelta {
    var handles: [Int32] = []
    var rows = LineageRows()
    var parent: [Int32] = []
    var child: [Int32] = []
    var label: [Int32] = []

    /// Bumped when the encoding changes; a delta of another format breaks the chain.
    static let format: Int64 = 1

    init() {}

    func encoded() -> [UInt8] {
        var w = BinaryWriter()
        w.put([Self.format])
        w.put(handles)
        rows.encode(into: &w)
        w.put(parent)
        w.put(child)
        w.put(label)
        return w.out
    }

    /// Decodes `encoded()`; nil for another format or a damaged blob.
    init?(reading reader: BinaryReader) {
        var r = reader
        guard let format: [Int64] = r.get(), format == [Self.format], let handles: [Int32] = r.get(),
              let rows = LineageRows(reading: &r), rows.count == handles.count, handles.allSatisfy({ $0 >= 0 }),
              Set(handles).count == handles.count,
              let parent: [Int32] = r.get(), let child: [Int32] = r.get(), let label: [Int32] = r.get(),
              child.count == parent.count, label.count == parent.count,
              parent.allSatisfy({ $0 >= 0 }), child.allSatisfy({ $0 >= 0 }), r.atEnd else { return nil }
        (self.handles, self.rows, self.parent, self.child, self.label) = (handles, rows, parent, child, label)
    }
}

extension WholeLineage {
    /// Applies `deltas` (oldest first): each changed row replaces the handle's row in
    /// place or is appended (in handle order, as a read of the table places it), and each
    /// new edge goes into its handles' lists in (other end, label) order, so the result
    /// holds what reading the tables at the last delta's generation would.
    mutating func apply(_ deltas: [LineageDelta]) {
        var latest: [Int32: (delta: Int, row: Int)] = [:]
        var limit = rowOf.count
        var downEdges: [(from: Int32, to: Int32, label: Int32)] = []
        for (d, delta) in deltas.enumerated() {
            for (i, h) in delta.handles.enumerated() {
                latest[h] = (d, i)
                limit = max(limit, Int(h) + 1)
            }
            for i in delta.parent.indices {
                downEdges.append((delta.parent[i], delta.child[i], delta.label[i]))
                limit = max(limit, Int(max(delta.parent[i], delta.child[i])) + 1)
            }
        }
        if limit > rowOf.count { rowOf += [Int32](repeating: -1, count: limit - rowOf.count) }
        for h in latest.keys.sorted() {
            let (d, i) = latest[h]!
            let r = rowOf[Int(h)]
            rowOf[Int(h)] = rows.copy(row: i, of: deltas[d].rows, over: r >= 0 ? Int(r) : nil)
        }
        guard !downEdges.isEmpty || limit + 1 != up.start.count else { return }
        up = up.adding(downEdges.map { ($0.to, $0.from, $0.label) }, limit: limit)
        down = down.adding(downEdges, limit: limit)
    }
}

extension Adjacency {
    /// This adjacency over `limit` handles with `added` (from, to, label) merged into each
    /// handle's list in (to, label) order; an edge already present is not repeated.
    func adding(_ added: [(from: Int32, to: Int32, label: Int32)], limit: Int) -> Adjacency {
        let sorted = added.sorted { ($0.from, $0.to, $0.label) < ($1.from, $1.to, $1.label) }
        let oldLimit = start.count - 1
        func base(_ h: Int) -> Int { Int(start[min(h, oldLimit)]) }
        var newStart = [Int32](repeating: 0, count: limit + 1)
        var newOther: [Int32] = [], newLabel: [Int32] = []
        newOther.reserveCapacity(other.count + sorted.count)
        newLabel.reserveCapacity(other.count + sorted.count)
        var copied = 0  // handles below this have their lists in the new arrays
        func copyLists(upTo h: Int) {
            let (a, b) = (base(copied), base(h))
            let shift = newOther.count - a
            for k in copied..<h { newStart[k] = Int32(base(k) + shift) }
            newOther.append(contentsOf: other[a..<b])
            newLabel.append(contentsOf: label[a..<b])
            copied = h
        }
        var j = 0
        while j < sorted.count {
            let h = Int(sorted[j].from)
            copyLists(upTo: h)
            newStart[h] = Int32(newOther.count)
            var i = base(h)
            let end = base(h + 1)
            while i < end || (j < sorted.count && Int(sorted[j].from) == h) {
                let takeAdded: Bool
                if j < sorted.count && Int(sorted[j].from) == h {
                    if i < end && (other[i], label[i]) == (sorted[j].to, sorted[j].label) {
                        j += 1  // already present
                        continue
                    }
                    takeAdded = i == end || (sorted[j].to, sorted[j].label) < (other[i], label[i])
                } else {
                    takeAdded = false
                }
                if takeAdded {
                    newOther.append(sorted[j].to)
                    newLabel.append(sorted[j].label)
                    j += 1
                } else {
                    newOther.append(other[i])
                    newLabel.append(label[i])
                    i += 1
                }
            }
            copied = h + 1
        }
        copyLists(upTo: limit)
        newStart[limit] = Int32(newOther.count)
        return Adjacency(start: newStart, other: newOther, label: newLabel, down: down)
    }
}

extension LineageRows {
    /// Copies row `o` of `other` over row `r`, or appends it when `r` is nil; returns
    /// the row's number.
    mutating func copy(row o: Int, of other: LineageRows, over r: Int?) -> Int32 {
        func text(_ s: ByteSpan, checkASCII: Bool = false) -> ByteSpan {
            guard s.count > 0 else { return s.count < 0 ? .none : ByteSpan(start: 0, count: 0) }
            return other.bytes.withUnsafeBufferPointer {
                span(UnsafeBufferPointer(rebasing: $0[Int(s.start)..<Int(s.start + s.count)]), checkASCII: checkASCII)
            }
        }
        let values = (key: text(other.key[o], checkASCII: true), kind: other.kind[o],
                      name: other.name[o] < 0 ? -1 : intern(other.names[Int(other.name[o])]), version: other.version[o],
                      created: text(other.created[o], checkASCII: true), id: text(other.id[o]), root: text(other.root[o]),
                      commit: text(other.commit[o]))
        guard let r else {
            key.append(values.key)
            kind.append(values.kind)
            name.append(values.name)
            version.append(values.version)
            created.append(values.created)
            id.append(values.id)
            root.append(values.root)
            commit.append(values.commit)
            return Int32(count - 1)
        }
        (key[r], kind[r], name[r], version[r]) = (values.key, values.kind, values.name, values.version)
        (created[r], id[r], root[r], commit[r]) = (values.created, values.id, values.root, values.commit)
        return Int32(r)
    }
}
