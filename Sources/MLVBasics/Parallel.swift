import Dispatch

/// Runs `body(worker)` on `count` threads at once and returns when all are done
/// (`DispatchQueue.concurrentPerform`).
///
/// The closure may capture non-Sendable state (buffers, pointers into a mapped file):
/// the caller promises that workers touch it only through locks, atomics, or disjoint
/// indexes. This is the one place mlv makes that promise to the compiler.
public enum Parallel {
    public static func workers(_ count: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { escaping in
            let box = UncheckedSendable(escaping)
            DispatchQueue.concurrentPerform(iterations: max(1, count)) { box.value($0) }
        }
    }

    /// Calls `body(i)` for i in 0..<items on `count` workers, handing out `batch`
    /// consecutive indexes at a time (neighbouring items, such as files of one
    /// directory, then stay on one worker); stops at the first error and rethrows it.
    public static func forEach(_ items: Int, workers count: Int = 2, batch: Int = 1, _ body: (Int) throws -> Void) throws {
        let next = AtomicCounter()
        let failure = Locked<Error?>(nil)
        let step = max(1, batch)
        workers(min(count, max(1, (items + step - 1) / step))) { _ in
            while failure.withLock({ $0 == nil }) {
                let start = (next.add(1) - 1) * step
                if start >= items { return }
                for i in start..<min(items, start + step) {
                    do { try body(i) } catch { failure.withLock { if $0 == nil { $0 = error } }; return }
                }
            }
        }
        if let e = failure.withLock({ $0 }) { throw e }
    }

    /// `body` over every item on `count` workers (see `forEach`), the results in the
    /// items' order; stops at the first error and rethrows it.
    public static func map<T, R>(_ items: [T], workers count: Int = 2, batch: Int = 1,
                                 _ body: (T) throws -> R) throws -> [R] {
        let results = Locked([R?](repeating: nil, count: items.count))
        try forEach(items.count, workers: count, batch: batch) { i in
            let r = try body(items[i])
            results.withLock { $0[i] = r }
        }
        return results.withLock { $0.map { $0! } }
    }
}

/// A value the caller vouches for across threads.
public struct UncheckedSendable<T>: @unchecked Sendable {
    public var value: T
    public init(_ value: T) { self.value = value }
}
