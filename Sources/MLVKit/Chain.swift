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
    /// the head, takes its lock and checks the head is still the one read (else the change
    /// lost a race and writes nothing), lets `make` build the next event from it and the
    /// time now (never earlier than the previous event's), writes the event object (pack,
    /// index, fsync), then moves the head to it and releases the lock. The event is durable
    /// before the ref names it; only a crash between the two leaves an unreferenced object.
    /// A model event is then added to the derived event index (see `EventIndex`).
    /// - Throws: what `make` throws; `.registryChanged(display)` when the head moved meanwhile;
    ///   `.store(.locked)` when another writer holds the head's lock.
    func appendEvent<E: ChainedEvent>(
        head: String, display: String, _ make: (_ previous: (id: ObjectID, event: E)?, _ now: String) throws -> E
    ) throws -> (id: ObjectID, event: E) {
        let guardLock = try lock(.shared)
        defer { withExtendedLifetime(guardLock) {} }
        // A chain being rewritten (`stagedChains`): its head is locked by the rewriter,
        // which moves it once at the end; each event here builds on the one staged before.
        let staged = stagedChains.withLock { $0[head] }
        let previous = try (staged ?? wrap { try refs.chainHead(head) }).map { id in (id: id, event: try chainEvent(id, as: E.self)) }
        // The head's lock is taken before anything is written, so a change that cannot
        // move the head (it moved since it was read, or a lock is held) writes nothing.
        let held = staged == nil ? try lockChainHead(head, display: display, expecting: previous?.id) : nil
        defer { held?.release() }
        var now = clockOverride.map { Timestamp.format(seconds: $0) } ?? Timestamp.now()
        if let p = previous.flatMap({ Timestamp.parse($0.event.time) }), let n = Timestamp.parse(now), n < p {
            now = previous!.event.time  // times never run backwards along a chain
        }
        let event = try make(previous, now)
        let id = try commitManifest(event.canonicalBytes(), writer: objects.writer())
        guard let held else {
            stagedChains.withLock { $0[head] = id }
            return (id, event)
        }
        CrashPoint.hit("registry.event-committed")
        try wrap { try held.write(id) }
        if let e = event as? Event { indexAppendedEvent(id, e) }
        return (id, event)
    }

    /// Takes the lock of the chain head `head` (relative to `refs/`) and checks that it
    /// still names `expected` (nil: no head yet).
    /// - Throws: `.registryChanged(display)` when it moved; `.store(.locked)` when another
    ///   writer holds the lock.
    func lockChainHead(_ head: String, display: String, expecting expected: ObjectID?) throws -> HeldRef {
        do {
            let held = try refs.lockChainHead(head, display: display)
            try held.expect(expected)
            return held
        } catch StoreError.refChanged {
            throw MLVError.registryChanged(ref: display)
        } catch let e as StoreError {
            throw MLVError.store(e)
        }
    }

    /// Adds one manifest-kind object (a manifest or an event) to `writer` and commits it;
    /// on failure the writer is aborted, so nothing it held is left half written.
    /// - Returns: the object's id.
    func commitManifest(_ bytes: [UInt8], writer: PackWriter) throws -> ObjectID {
        let id = SHA256.hash(bytes)
        do {
            try wrap { try writer.put(id, kind: .manifest, bytes: bytes, compression: .always) }
            try wrap { try writer.commit() }
        } catch {
            writer.abort()
            throw error
        }
        return id
    }
}
