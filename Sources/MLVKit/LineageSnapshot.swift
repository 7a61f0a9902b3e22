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
        w.put(rows.bytes)
        for spans in [rows.key, rows.created, rows.id, rows.root, rows.commit] { w.put(spans) }
        w.put(rows.kind)
        w.put(rows.name)
        w.put(rows.version)
        w.put(Array(rows.names.joined(separator: "\u{0}").utf8))
        w.put([Int64(rows.names.count), rows.ascii ? 1 : 0])
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
        guard let format: [Int64] = r.get(), format == [Self.format], let bytes: [UInt8] = r.get() else { return nil }
        var rows = LineageRows()
        rows.bytes = bytes
        guard let key: [ByteSpan] = r.get(), let created: [ByteSpan] = r.get(), let id: [ByteSpan] = r.get(),
              let root: [ByteSpan] = r.get(), let commit: [ByteSpan] = r.get(), let kind: [Int8] = r.get(),
              let name: [Int32] = r.get(), let version: [Int32] = r.get(), let names: [UInt8] = r.get(),
              let counts: [Int64] = r.get(), counts.count == 2, let rowOf: [Int32] = r.get() else { return nil }
        let n = key.count
        guard [created.count, id.count, root.count, commit.count, kind.count, name.count, version.count].allSatisfy({ $0 == n })
        else { return nil }
        (rows.key, rows.created, rows.id, rows.root, rows.commit) = (key, created, id, root, commit)
        (rows.kind, rows.name, rows.version) = (kind, name, version)
        rows.names = counts[0] == 0 ? [] : names.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard rows.names.count == Int(counts[0]) else { return nil }
        for (i, s) in rows.names.enumerated() { rows.nameIndex[s] = Int32(i) }
        rows.ascii = counts[1] == 1
        // Every span and index must land inside what it points into.
        let size = Int64(bytes.count)
        for spans in [key, created, id, root, commit] {
            guard spans.allSatisfy({ $0.count < 0 || ($0.start >= 0 && Int64($0.start) + Int64($0.count) <= size) }) else { return nil }
        }
        guard name.allSatisfy({ $0 >= -1 && Int($0) < rows.names.count }), kind.allSatisfy({ $0 >= -1 && $0 < 4 }),
              rowOf.allSatisfy({ $0 >= -1 && Int($0) < n }) else { return nil }
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
