import CSQLite

/// A failed SQLite call: the call, the database path, SQLite's result code and message.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public var call: String
    public var path: String
    public var code: Int32
    public var message: String

    public var description: String { "\(call) on '\(path)': \(message) (sqlite \(code))" }

    /// The file is damaged or not a database (SQLITE_CORRUPT, SQLITE_NOTADB), as opposed
    /// to busy, locked, read-only or failing I/O.
    public var isDamage: Bool { code & 0xFF == SQLITE_CORRUPT || code & 0xFF == SQLITE_NOTADB }
}

/// A value bound to a statement parameter.
public enum SQLiteValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])
}

/// One SQLite connection (`sqlite3_open_v2`), used by one thread at a time.
///
/// The only database mlv keeps is derived (the lineage index), so SQLite writes its own
/// files rather than going through `FS`: losing or corrupting it loses nothing, and the
/// caller rebuilds it.
public final class SQLiteDatabase: @unchecked Sendable {
    public let path: String
    private var handle: OpaquePointer?

    /// Opens (creating when `create`) the database at `path`, with a busy timeout so
    /// concurrent writers wait for each other instead of failing.
    /// - Throws: `SQLiteError` from `sqlite3_open_v2`.
    public init(path: String, create: Bool = true, busyTimeoutMilliseconds: Int32 = 5000) throws {
        self.path = path
        var flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX
        if create { flags |= SQLITE_OPEN_CREATE }
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            handle = nil
            throw SQLiteError(call: "sqlite3_open_v2", path: path, code: rc, message: message)
        }
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
    }

    deinit { sqlite3_close_v2(handle) }

    func error(_ call: String, _ rc: Int32) -> SQLiteError {
        SQLiteError(call: call, path: path, code: sqlite3_extended_errcode(handle),
                    message: String(cString: sqlite3_errmsg(handle)) + " (errno \(sqlite3_system_errno(handle)))")
    }

    /// Runs one or more statements that return no rows (`sqlite3_exec`).
    /// - Throws: `SQLiteError`.
    public func execute(_ sql: String) throws {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error("sqlite3_exec", rc) }
    }

    /// Opens column `column` of row `rowid` of `table` for reading in pieces
    /// (`sqlite3_blob_open`), so a large blob is copied once, straight where it goes.
    /// - Throws: `SQLiteError` when there is no such row or column.
    public func openBlob(table: String, column: String, rowid: Int64) throws -> SQLiteBlob {
        var blob: OpaquePointer?
        let rc = sqlite3_blob_open(handle, "main", table, column, rowid, 0, &blob)
        guard rc == SQLITE_OK, let blob else {
            sqlite3_blob_close(blob)
            throw error("sqlite3_blob_open", rc)
        }
        return SQLiteBlob(database: self, handle: blob)
    }

    /// Compiles a statement (`sqlite3_prepare_v2`).
    /// - Throws: `SQLiteError` for bad SQL.
    public func prepare(_ sql: String) throws -> SQLiteStatement {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error("sqlite3_prepare_v2", rc) }
        return SQLiteStatement(database: self, handle: stmt)
    }

    /// Runs `body` inside `BEGIN IMMEDIATE` ... `COMMIT`, rolling back when it throws.
    /// - Throws: what `body` throws, or `SQLiteError`.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let value = try body()
            try execute("COMMIT")
            return value
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// How many rows the last INSERT, UPDATE or DELETE changed (`sqlite3_changes`).
    public var changes: Int { Int(sqlite3_changes(handle)) }

    /// The rowid of the last inserted row.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
}

/// A compiled statement: bind, step, read columns, reset.
public final class SQLiteStatement: @unchecked Sendable {
    private let database: SQLiteDatabase
    private let handle: OpaquePointer

    init(database: SQLiteDatabase, handle: OpaquePointer) {
        self.database = database
        self.handle = handle
    }

    deinit { sqlite3_finalize(handle) }

    /// Resets the statement and binds `values` to its parameters, in order.
    /// - Throws: `SQLiteError`.
    public func bind(_ values: [SQLiteValue]) throws {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
        for (i, v) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(handle, index)
            case .int(let n): rc = sqlite3_bind_int64(handle, index, n)
            case .double(let d): rc = sqlite3_bind_double(handle, index, d)
            case .text(let s): rc = s.withCString { mlv_sqlite3_bind_text(handle, index, $0, -1) }
            case .blob(let b):
                rc = b.isEmpty ? sqlite3_bind_zeroblob(handle, index, 0)
                    : b.withUnsafeBytes { mlv_sqlite3_bind_blob(handle, index, $0.baseAddress, Int32($0.count)) }
            }
            guard rc == SQLITE_OK else { throw database.error("sqlite3_bind", rc) }
        }
    }

    /// Advances to the next row; false when there is none.
    /// - Throws: `SQLiteError`.
    public func step() throws -> Bool {
        let rc = sqlite3_step(handle)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw database.error("sqlite3_step", rc)
    }

    /// Binds `values` and runs the statement to completion (inserts, updates).
    /// - Throws: `SQLiteError`.
    public func run(_ values: [SQLiteValue] = []) throws {
        try bind(values)
        while try step() {}
    }

    /// Binds `values` and calls `body` for each row.
    /// - Throws: `SQLiteError` or what `body` throws.
    public func forEachRow(_ values: [SQLiteValue] = [], _ body: (SQLiteStatement) throws -> Void) throws {
        try bind(values)
        while try step() { try body(self) }
    }

    /// Column `i` of the current row as an integer (0 for NULL).
    public func int(_ i: Int32) -> Int64 { sqlite3_column_int64(handle, i) }
    /// Column `i` as a double (0 for NULL).
    public func double(_ i: Int32) -> Double { sqlite3_column_double(handle, i) }
    /// Whether column `i` is NULL.
    public func isNull(_ i: Int32) -> Bool { sqlite3_column_type(handle, i) == SQLITE_NULL }
    /// Column `i` as bytes (empty for NULL or an empty blob).
    public func blob(_ i: Int32) -> [UInt8] {
        guard let p = sqlite3_column_blob(handle, i) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i))))
    }
    /// Column `i` as text, nil for NULL.
    public func text(_ i: Int32) -> String? {
        guard let p = sqlite3_column_text(handle, i) else { return nil }
        let n = Int(sqlite3_column_bytes(handle, i))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    /// Column `i`'s bytes as stored (a blob's, or a text's UTF-8 with no conversion),
    /// valid until the next step or reset; empty for NULL.
    public func rawBytes(_ i: Int32) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: sqlite3_column_blob(handle, i), count: Int(sqlite3_column_bytes(handle, i)))
    }

    /// Column `i`'s text bytes (UTF-8, no terminator), valid until the next step or
    /// reset, for reading many rows without making a `String` of each; nil for NULL.
    public func bytes(_ i: Int32) -> UnsafeBufferPointer<UInt8>? {
        guard let p = sqlite3_column_text(handle, i) else { return nil }
        return UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(handle, i)))
    }
}

/// A blob open for reading in pieces (`sqlite3_blob_read`).
public final class SQLiteBlob: @unchecked Sendable {
    private let database: SQLiteDatabase
    private let handle: OpaquePointer

    init(database: SQLiteDatabase, handle: OpaquePointer) {
        self.database = database
        self.handle = handle
    }

    deinit { sqlite3_blob_close(handle) }

    /// The blob's size in bytes.
    public var count: Int { Int(sqlite3_blob_bytes(handle)) }

    /// Copies `count` bytes from `offset` to `pointer`.
    /// - Throws: `SQLiteError` for a range outside the blob or a failed read.
    public func read(into pointer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws {
        guard count > 0 else { return }
        guard offset >= 0, count <= Int(Int32.max), offset <= Int(Int32.max) else {
            throw SQLiteError(call: "sqlite3_blob_read", path: database.path, code: SQLITE_RANGE, message: "range out of bounds")
        }
        let rc = sqlite3_blob_read(handle, pointer, Int32(count), Int32(offset))
        guard rc == SQLITE_OK else { throw database.error("sqlite3_blob_read", rc) }
    }
}
