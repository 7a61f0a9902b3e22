import MLVBasics
import MLVModel

/// One process as `/proc/<pid>/stat` describes it.
public struct ProcessStat: Sendable, Equatable {
    public var pid: Int32
    public var ppid: Int32
    /// utime + stime + cutime + cstime, in clock ticks (the process and its reaped children).
    public var ticks: Int64
    /// Resident set size in pages.
    public var rssPages: Int64

    public init(pid: Int32, ppid: Int32, ticks: Int64, rssPages: Int64) {
        self.pid = pid; self.ppid = ppid; self.ticks = ticks; self.rssPages = rssPages
    }
}

/// A GPU's load as `nvidia-smi` reports it.
public struct GPUSample: Sendable, Equatable {
    /// Utilisation in percent.
    public var util: Double
    /// Memory used, in bytes.
    public var memory: Int64
}

/// Parsers for the kernel's pseudo-files and `nvidia-smi` CSV: pure functions on text,
/// so they are tested on fixture text.
public enum ProcParse {
    /// `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may hold
    /// spaces and parentheses itself, so fields are counted from the last `)`.
    public static func stat(_ text: String) -> ProcessStat? {
        let bytes = Array(text.utf8)
        guard let open = bytes.firstIndex(of: UInt8(ascii: "(")), let close = bytes.lastIndex(of: UInt8(ascii: ")")),
              let pid = Int32(String(decoding: bytes[..<open], as: UTF8.self).trimmingSpaces) else { return nil }
        let rest = String(decoding: bytes[(close + 1)...], as: UTF8.self).split(separator: " ", omittingEmptySubsequences: true)
        // rest[0] is field 3 (state): field k is rest[k - 3].
        guard rest.count >= 22, let ppid = Int32(rest[1]), let utime = Int64(rest[11]), let stime = Int64(rest[12]),
              let cutime = Int64(rest[13]), let cstime = Int64(rest[14]), let rss = Int64(rest[21]) else { return nil }
        return ProcessStat(pid: pid, ppid: ppid, ticks: utime + stime + cutime + cstime, rssPages: rss)
    }

    /// `/proc/<pid>/io`: bytes the process (and its reaped children) caused to be read
    /// from and written to storage.
    public static func io(_ text: String) -> (read: Int64, write: Int64)? {
        var read: Int64?, write: Int64?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let value = Int64(parts[1].trimmingSpaces)
            if parts[0] == "read_bytes" { read = value } else if parts[0] == "write_bytes" { write = value }
        }
        guard let read, let write else { return nil }
        return (read, write)
    }

    /// `/proc/net/dev`: received and sent bytes summed over every interface but `lo`.
    public static func netDev(_ text: String) -> (rx: Int64, tx: Int64) {
        var rx: Int64 = 0, tx: Int64 = 0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let name = parts[0].trimmingSpaces
            let fields = parts[1].split(separator: " ", omittingEmptySubsequences: true)
            guard name != "lo", fields.count >= 9, let r = Int64(fields[0]), let t = Int64(fields[8]) else { continue }
            rx += r; tx += t
        }
        return (rx, tx)
    }

    /// `/proc/cpuinfo`: the CPU model name and the number of logical processors.
    public static func cpuInfo(_ text: String) -> (model: String?, cores: Int) {
        var model: String?
        var cores = 0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard let key = parts.first?.trimmingSpaces else { continue }
            if key == "processor" { cores += 1 }
            if model == nil, key == "model name" || key == "Model" || key == "cpu model", parts.count == 2 {
                model = parts[1].trimmingSpaces
            }
        }
        return (model, cores)
    }

    /// `/proc/meminfo`: MemTotal in bytes.
    public static func memTotal(_ text: String) -> Int64? {
        for line in text.split(separator: "\n") where line.hasPrefix("MemTotal:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kib = Int64(fields[1]) else { return nil }
            return kib * 1024
        }
        return nil
    }

    /// `root` and every process descending from it, by parent links.
    public static func tree(of root: Int32, in all: [ProcessStat]) -> [ProcessStat] {
        var children: [Int32: [ProcessStat]] = [:]
        var found: ProcessStat?
        for p in all {
            children[p.ppid, default: []].append(p)
            if p.pid == root { found = p }
        }
        guard let found else { return [] }
        var out = [found], queue = [root], seen: Set<Int32> = [root]
        while let pid = queue.popLast() {
            for c in children[pid] ?? [] where seen.insert(c.pid).inserted {
                out.append(c)
                queue.append(c.pid)
            }
        }
        return out
    }

    /// `nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits`:
    /// one line per GPU, `42, 1234` (percent, MiB).
    public static func nvidiaUsage(_ text: String) -> [GPUSample] {
        text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: ",").map { $0.trimmingSpaces }
            guard f.count >= 2, let util = Double(f[0]), let mib = Double(f[1]) else { return nil }
            return GPUSample(util: util, memory: Int64(mib * 1_048_576))
        }
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        let bytes = Array(utf8)
        guard let first = bytes.firstIndex(where: { $0 != 32 && $0 != 9 }) else { return "" }
        let last = bytes.lastIndex { $0 != 32 && $0 != 9 }!
        return String(decoding: bytes[first...last], as: UTF8.self)
    }
}

/// One system sample of a run: `{"time":..,"cpu":percent,"rss":bytes,"readBytes":..,
/// "writeBytes":..,"netRx":..,"netTx":..,"gpu":[{"util":..,"memory":..}]?}`.
public struct SystemSample: Sendable, Equatable {
    public var time: String
    /// CPU use of the process tree since the previous sample, in percent of one core.
    public var cpu: Double
    public var rss: Int64
    public var readBytes: Int64
    public var writeBytes: Int64
    /// Network bytes since the run started (every interface but `lo`; host-wide).
    public var netRx: Int64
    public var netTx: Int64
    public var gpu: [GPUSample]?

    /// The canonical JSON line, newline included.
    public var line: [UInt8] {
        var o: [String: JSON] = [
            "time": .string(time), "cpu": .number((cpu * 10).rounded() / 10), "rss": .int(rss),
            "readBytes": .int(readBytes), "writeBytes": .int(writeBytes), "netRx": .int(netRx), "netTx": .int(netTx),
        ]
        if let gpu { o["gpu"] = .array(gpu.map { .object(["util": .number($0.util), "memory": .int($0.memory)]) }) }
        return JSON.object(o).canonicalBytes() + [10]
    }
}

/// Samples the process tree under one pid from `/proc` (and GPUs through `nvidia-smi`
/// when it is on `PATH`).
final class SystemSampler {
    let root: Int32
    private let useGPU: Bool
    /// A new process has used no CPU time: the first sample measures from its start.
    private var lastTicks: Int64? = 0
    private var lastTime = monotonicMilliseconds()
    private let netStart: (rx: Int64, tx: Int64)
    private let ticksPerSecond = Double(SystemFiles.clockTicks)
    private let pageSize = Int64(SystemFiles.pageSize)

    /// Starts sampling `root`, which must have just been started.
    init(root: Int32, useGPU: Bool = SystemFiles.onPath("nvidia-smi")) {
        self.root = root
        self.useGPU = useGPU
        netStart = ProcParse.netDev(SystemFiles.text("/proc/net/dev") ?? "")
    }

    /// A sample of the tree now; nil when `/proc` has nothing for it (it has exited).
    @discardableResult
    func sample() -> SystemSample? {
        let all = SystemFiles.processIDs().compactMap { pid in SystemFiles.text("/proc/\(pid)/stat").flatMap(ProcParse.stat) }
        let tree = ProcParse.tree(of: root, in: all)
        guard !tree.isEmpty else { return nil }
        var read: Int64 = 0, write: Int64 = 0
        for p in tree {
            if let io = SystemFiles.text("/proc/\(p.pid)/io").flatMap(ProcParse.io) { read += io.read; write += io.write }
        }
        let ticks = tree.reduce(Int64(0)) { $0 + $1.ticks }
        let now = monotonicMilliseconds()
        var cpu = 0.0
        if let lastTicks, now > lastTime {
            cpu = max(0, Double(ticks - lastTicks) / ticksPerSecond / (Double(now - lastTime) / 1000) * 100)
        }
        lastTicks = ticks
        lastTime = now
        let net = ProcParse.netDev(SystemFiles.text("/proc/net/dev") ?? "")
        var gpu: [GPUSample]?
        if useGPU, let r = try? Subprocess.capture(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                                    "--format=csv,noheader,nounits"]), r.termination == .exited(0) {
            gpu = ProcParse.nvidiaUsage(String(decoding: r.stdout, as: UTF8.self))
        }
        return SystemSample(time: Timestamp.nowMilliseconds(), cpu: cpu,
                            rss: tree.reduce(Int64(0)) { $0 + $1.rssPages } * pageSize,
                            readBytes: read, writeBytes: write,
                            netRx: max(0, net.rx - netStart.rx), netTx: max(0, net.tx - netStart.tx), gpu: gpu)
    }
}
