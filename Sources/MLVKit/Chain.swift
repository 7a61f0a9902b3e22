import MLVBasics
import MLVModel
import MLVStore

extension Repository {
    /// Reads one event of a hash chain.
    /// - Throws: `.store(.missingObject/.corruptObject)`, `.damaged` when it does not decode as `E`.
    func chainEvent<E: ChainedEvent>(_ id: ObjectID, as type: E.Type) throws -> E {
        let json = try manifestJSON(id)
        do { return try E(json: json) } catch let e as ModelError { throw MLVError.damaged("event \(id.short): \(e.message)") }
    }

    /// Appends one event to the chain whose head ref is `head` (relative to `refs/`): reads
    /// the head, lets `make` build the next event from it and the time now (never earlier
    /// than the previous event's), writes the event object (pack, index, fsync), then
    /// moves the head from the id read to the new event by compare-and-swap. The event is
    /// durable before the ref names it; a lost race leaves only an unreferenced object.
    /// - Throws: what `make` throws; `.registryChanged(display)` when the head moved meanwhile.
    func appendEvent<E: ChainedEvent>(
        head: String, display: String, _ make: (_ previous: (id: ObjectID, event: E)?, _ now: String) throws -> E
    ) throws -> (id: ObjectID, event: E) {
        let guardLock = try lock(.shared)
        defer { withExtendedLifetime(guardLock) {} }
        let previous = try wrap { try refs.chainHead(head) }.map { id in (id: id, event: try chainEvent(id, as: E.self)) }
        var now = clockOverride.map { Timestamp.format(seconds: $0) } ?? Timestamp.now()
        if let p = previous.flatMap({ Timestamp.parse($0.event.time) }), let n = Timestamp.parse(now), n < p {
            now = previous!.event.time  // times never run backwards along a chain
        }
        let event = try make(previous, now)
        let bytes = event.canonicalBytes()
        let id = SHA256.hash(bytes)
        let writer = objects.writer()
        do {
            try wrap { try writer.put(id, kind: .manifest, bytes: bytes, compression: .always) }
            try wrap { try writer.commit() }
        } catch {
            writer.abort()
            throw error
        }
        do {
            try refs.updateChainHead(head, display: display, expected: previous?.id, new: id)
        } catch StoreError.refChanged {
            throw MLVError.registryChanged(ref: display)
        } catch let e as StoreError {
            throw MLVError.store(e)
        }
        return (id, event)
    }
}
