/// `count` bytes of SplitMix64 output from `seed`: each 64-bit output as 8 little-endian
/// bytes, concatenated and cut to `count`. Test data for known-answer vectors.
public func splitmix64Bytes(seed: UInt64, count: Int) -> [UInt8] {
    precondition(count >= 0, "a byte count is not negative")
    var x = seed
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        var offset = 0
        while offset < count {
            x = x &+ 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z = z ^ (z >> 31)
            for _ in 0..<Swift.min(8, count - offset) {
                buffer[offset] = UInt8(truncatingIfNeeded: z)
                z >>= 8
                offset += 1
            }
        }
        initialized = count
    }
}

/// A seeded SplitMix64 generator, for deterministic "random" choices in tests (kill
/// moments, fault positions): the same seed gives the same sequence on every machine.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
