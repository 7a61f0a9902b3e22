import MLVBasics

/// What `probeConditionalWrites` found.
public struct ConditionalWriteProbe: Sendable, Equatable {
    /// A second `create` of one key was refused (`If-None-Match: *` honoured).
    public var refusesSecondCreate: Bool
    /// A `replace` with a wrong entity tag was refused (`If-Match` honoured).
    public var refusesStaleReplace: Bool

    /// True when the remote honours both conditions, so refs on it can move safely.
    public var isSafe: Bool { refusesSecondCreate && refusesStaleReplace }

    /// Why the remote is unsafe, for a person; nil when it is safe.
    public var explanation: String? {
        var missing: [String] = []
        if !refusesSecondCreate { missing.append("a create of an existing key succeeded (If-None-Match: * ignored)") }
        if !refusesStaleReplace { missing.append("a replace with a wrong entity tag succeeded (If-Match ignored)") }
        guard !missing.isEmpty else { return nil }
        return missing.joined(separator: "; ")
            + ". Two people pushing at once could overwrite each other's refs; use a store that honours conditional writes"
    }
}

/// Checks that `remote` honours conditional writes: creates a probe key twice and
/// replaces it with a wrong entity tag, then deletes it.
///
/// The probe key is `mlv-probe/<random>`, so probes from several machines never meet.
/// - Throws: `RemoteError` when a write that must succeed fails (no access, unreachable).
public func probeConditionalWrites(_ remote: any Remote) throws -> ConditionalWriteProbe {
    var random = SystemRandomNumberGenerator()
    let key = "mlv-probe/" + String(random.next() as UInt64, radix: 16) + String(random.next() as UInt64, radix: 16)
    let etag = try remote.create(key, Array("mlv conditional write probe 1\n".utf8))
    defer { try? remote.delete(key) }
    var result = ConditionalWriteProbe(refusesSecondCreate: false, refusesStaleReplace: false)
    do {
        _ = try remote.create(key, Array("mlv conditional write probe 2\n".utf8))
    } catch let e as RemoteError where e.kind == .preconditionFailed {
        result.refusesSecondCreate = true
    }
    let wrong = etag.hasPrefix("\"") ? "\"0000000000000000000000000000dead\"" : "0000000000000000000000000000dead"
    do {
        _ = try remote.replace(key, Array("mlv conditional write probe 3\n".utf8), expected: wrong == etag ? wrong + "0" : wrong)
    } catch let e as RemoteError where e.kind == .preconditionFailed {
        result.refusesStaleReplace = true
    }
    return result
}
