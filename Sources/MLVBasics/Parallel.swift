import Dispatch
#if canImport(Glibc)
import Glibc
#endif

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

/// Threads that only use CPU time nobody else wants.
public enum IdleThread {
    /// Runs `body` on a new thread whose scheduling policy is Linux `SCHED_IDLE`: it runs
    /// only when a CPU would otherwise be idle, so background work (compressing a run's
    /// log) never takes time from the command being run. Where the policy is refused the
    /// thread is an ordinary one.
    /// - Returns: a group that is left when `body` returns (wait on it to join); nil when
    ///   no thread could be made (`body` has not run then).
    public static func start(_ body: @escaping @Sendable () -> Void) -> DispatchGroup? {
        final class Box {
            let body: @Sendable () -> Void
            let done: DispatchGroup
            init(_ b: @escaping @Sendable () -> Void, _ g: DispatchGroup) { body = b; done = g }
        }
        let group = DispatchGroup()
        group.enter()
        let box = Unmanaged.passRetained(Box(body, group)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<AnyObject>.fromOpaque(raw!).takeRetainedValue() as! Box
            #if os(Linux)
            var parameters = sched_param()
            parameters.sched_priority = 0
            _ = sched_setscheduler(0, 5 /* SCHED_IDLE */, &parameters)
            #endif
            box.body()
            #if os(Linux)
            // The thread's exit runs at normal priority: an idle-priority thread still
            // exiting holds up the whole process's exit (and whoever waits for it) until a
            // CPU has nothing else to do, which took 3-4 ms at the end of a busy `mlv run`.
            _ = sched_setscheduler(0, 0 /* SCHED_OTHER */, &parameters)
            #endif
            box.done.leave()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<AnyObject>.fromOpaque(box).release()
            return nil
        }
        pthread_detach(thread)
        return group
    }
}
