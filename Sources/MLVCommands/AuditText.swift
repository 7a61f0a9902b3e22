import MLVBasics
import MLVKit
import MLVModel
#if canImport(Glibc)
import Glibc
#endif

/// One worker's share of `mlv audit`'s text: the models it rendered, each with its bytes
/// in one growing buffer or the error that stopped it. Written through a raw pointer
/// (200,000 events, 22 MB on a large store: per-append array bookkeeping shows).
final class AuditSink {
    private var base: UnsafeMutableRawPointer
    private var capacity: Int
    private(set) var count = 0
    private(set) var placed: [(position: Int, range: Range<Int>, error: Error?)] = []

    init(reserve: Int) {
        capacity = max(reserve, 4096)
        base = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    /// The bytes written so far.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Renders the model at `position` (or records why it failed).
    func add(_ position: Int, _ trail: Result<AuditTrail, Error>) {
        let start = count
        do {
            try render(try trail.get())
            placed.append((position, start..<count, nil))
        } catch {
            count = start
            placed.append((position, start..<start, error))
        }
    }

    /// Writes the models 0..<count of `sinks` in order, each run of neighbours rendered by
    /// one sink in one write; throws the first failure after writing the models before it.
    static func write(_ sinks: [AuditSink], count: Int) throws {
        var order = [(sink: Int, range: Range<Int>, error: Error?)?](repeating: nil, count: count)
        for (k, sink) in sinks.enumerated() { for p in sink.placed { order[p.position] = (k, p.range, p.error) } }
        try flushStandardOutput()
        var pending: (sink: Int, range: Range<Int>)?
        func flush() throws {
            if let p = pending { try writeOut(UnsafeRawBufferPointer(rebasing: sinks[p.sink].bytes[p.range])) }
            pending = nil
        }
        for entry in order {
            guard let entry else { continue }
            if let error = entry.error { try flush(); throw error }
            if let p = pending, p.sink == entry.sink, p.range.upperBound == entry.range.lowerBound {
                pending = (p.sink, p.range.lowerBound..<entry.range.upperBound)
            } else {
                try flush()
                pending = (entry.sink, entry.range)
            }
        }
        try flush()
    }

    /// Appends one model's history as `mlv audit` prints it: per event a line (model,
    /// seq, time, actor, what happened, short id), its message and its approvals indented below.
    /// - Throws: `MLVError.damaged` for a listing that does not decode.
    func render(_ trail: AuditTrail) throws {
        var model = trail.model
        try model.withUTF8 { name in
            let model = UnsafeRawBufferPointer(name)
            if trail.count == 0 { put(model); put(": no registry events\n"); return }
            try trail.forEach { e in
                put(model); put(" #"); put(e.seq)
                put("  "); put(e.time)
                put("  "); put(e.actor)
                put("  "); describe(e)
                put("  "); put(UnsafeRawBufferPointer(rebasing: e.idHex.prefix(12)))
                put("\n")
                if !e.message.isEmpty { put("    "); put(e.message); put("\n") }
                if e.approvalCount > 0 {
                    e.forEachApproval { a in
                        put("    approved by "); put(a.actor); put(" at "); put(a.time)
                        if !a.message.isEmpty { put(": "); put(a.message) }
                        put("\n")
                    }
                }
            }
        }
    }

    /// Appends what an event did, for people: "promote v3 to production", "alias champion -> v2".
    func describe(_ e: AuditEvent) {
        switch e.action {
        case .approve: put("approve v"); put(e.version); put(" for "); put(e.stage ?? unknown)
        case .promote:
            put("promote v"); put(e.version); put(" to "); put(e.stage ?? unknown)
            if e.forced { put(" FORCED ("); if let r = e.reason { put(r) } else { put("no reason") }; put(")") }
        case .aliasSet: put("alias "); put(e.alias ?? unknown); put(" -> v"); put(e.version)
        case .aliasRemove: put("alias "); put(e.alias ?? unknown); put(" removed (was v"); put(e.version); put(")")
        }
    }

    private var unknown: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: ("?" as StaticString).utf8Start, count: 1) }

    private func reserve(_ n: Int) {
        guard count + n > capacity else { return }
        capacity = max(capacity * 2, count + n)
        let grown = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        grown.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = grown
    }

    private func put(_ bytes: UnsafeRawBufferPointer) {
        guard let from = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        memcpy(base + count, from, bytes.count)
        count += bytes.count
    }

    private func put(_ text: StaticString) {
        put(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    private func put(_ n: Int) {
        reserve(20)
        var v = UInt64(max(0, n)), digits = 0
        repeat { digits += 1; v /= 10 } while v > 0
        v = UInt64(max(0, n))
        for i in stride(from: digits - 1, through: 0, by: -1) {
            base.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10), toByteOffset: count + i, as: UInt8.self)
            v /= 10
        }
        count += digits
    }
}

/// What `head`'s event did, for people (see `AuditSink.describe`).
func describe(_ head: RegistryHead) -> String {
    let sink = AuditSink(reserve: 256)
    try? AuditTrail(model: head.event.model, events: [(head.id, head.event)]).forEach { sink.describe($0) }
    return String(decoding: sink.bytes, as: UTF8.self)
}
