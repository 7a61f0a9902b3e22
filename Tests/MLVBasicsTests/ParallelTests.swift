import MLVBasics
import MLVTestSupport
import Testing

@Suite("Parallel")
struct ParallelTests {
    @Test("forEach visits every index exactly once", arguments: [(0, 2), (1, 2), (7, 3), (10_000, 2), (100, 1), (5, 16)])
    func visitsEachOnce(items: Int, workers: Int) throws {
        let visits = Locked([Int](repeating: 0, count: items))
        try Parallel.forEach(items, workers: workers) { i in
            visits.withLock { $0[i] += 1 }
        }
        #expect(visits.withLock { $0.allSatisfy { $0 == 1 } })
    }

    struct Stop: Error, Equatable { var index: Int }

    @Test("forEach rethrows the error and stops handing out work")
    func propagatesError() {
        let ran = AtomicCounter()
        let error = #expect(throws: Stop.self) {
            try Parallel.forEach(100_000, workers: 2) { i in
                ran.add(1)
                if i == 37 { throw Stop(index: 37) }
            }
        }
        #expect(error == Stop(index: 37))
        #expect(ran.current < 100_000)
    }

    @Test("forEach with several failures throws the first one recorded")
    func firstOfSeveral() {
        let error = #expect(throws: Stop.self) {
            try Parallel.forEach(1000, workers: 1) { i in
                if i % 100 == 3 { throw Stop(index: i) }
            }
        }
        #expect(error == Stop(index: 3), "one worker meets index 3 first")
    }

    @Test("workers runs each worker index once")
    func workers() {
        let seen = Locked<[Int]>([])
        Parallel.workers(5) { w in seen.withLock { $0.append(w) } }
        #expect(seen.withLock { $0.sorted() } == [0, 1, 2, 3, 4])
    }
}
