import MLVBasics
import MLVModel

/// What a run's environment blob holds (`mlv.environment/1`): OS and kernel, CPU model
/// and cores, memory, GPUs, Python and its packages when the command runs Python, and
/// the environment variables with secrets redacted.
public enum RunEnvironment {
    public static let schema = "mlv.environment/1"

    /// Whether the command runs Python: its program is `python*`, or a `.py` script.
    public static func runsPython(_ command: [String]) -> Bool {
        guard let first = command.first else { return false }
        let base = FS.baseName(of: first)
        return base.hasPrefix("python") || base.hasSuffix(".py")
    }

    /// The interpreter to ask about Python: the command's own, or `python3` for a script.
    static func pythonProgram(_ command: [String]) -> String {
        let first = command.first ?? "python3"
        return FS.baseName(of: first).hasPrefix("python") ? first : "python3"
    }

    /// Captures the environment document. `variables` is the child's environment (it is
    /// redacted here); `directory` is where Python is asked about itself.
    static func capture(command: [String], variables: [String: String], directory: String) -> JSON {
        let u = SystemFiles.uname()
        let cpu = ProcParse.cpuInfo(SystemFiles.text("/proc/cpuinfo") ?? "")
        var o: [String: JSON] = [
            "schema": .string(schema),
            "os": .string(osName() ?? u.system),
            "kernel": .string("\(u.system) \(u.release) \(u.machine)"),
            "cpu": .object(["model": cpu.model.map { .string($0) } ?? .null, "cores": .int(Int64(cpu.cores))]),
            "memory": ProcParse.memTotal(SystemFiles.text("/proc/meminfo") ?? "").map { .int($0) } ?? .null,
            "gpus": .array(gpus()),
            "variables": .object(Redaction.environment(variables).mapValues { .string($0) }),
        ]
        if runsPython(command) {
            let python = pythonProgram(command)
            var p: [String: JSON] = [:]
            if let r = try? Subprocess.capture([python, "--version"], directory: directory, environment: variables),
               r.termination == .exited(0) {
                // Python 2 printed its version on stderr.
                let text = String(decoding: r.stdout.isEmpty ? r.stderr : r.stdout, as: UTF8.self)
                p["version"] = .string(text.trimmingNewlines.replacingPrefix("Python ", with: ""))
            }
            if let r = try? Subprocess.capture([python, "-m", "pip", "freeze", "--disable-pip-version-check"],
                                               directory: directory, environment: variables),
               r.termination == .exited(0) {
                let lines = String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map { $0.trimmingSpaces }
                    .filter { !$0.isEmpty }
                p["packages"] = .array(lines.map { .string(Redaction.stripURLCredentials($0)) })
            }
            if !p.isEmpty { o["python"] = .object(p) }
        }
        return .object(o)
    }

    /// PRETTY_NAME from /etc/os-release.
    static func osName() -> String? {
        for line in (SystemFiles.text("/etc/os-release") ?? "").split(separator: "\n") where line.hasPrefix("PRETTY_NAME=") {
            var v = String(line.dropFirst("PRETTY_NAME=".count))
            if v.hasPrefix("\""), v.hasSuffix("\""), v.count >= 2 { v = String(v.dropFirst().dropLast()) }
            return v
        }
        return nil
    }

    /// GPUs `nvidia-smi` lists (none when it is not on PATH or fails).
    static func gpus() -> [JSON] {
        guard SystemFiles.onPath("nvidia-smi"),
              let r = try? Subprocess.capture(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                               "--format=csv,noheader,nounits"]),
              r.termination == .exited(0) else { return [] }
        return String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").compactMap { line in
            let f = line.split(separator: ",").map { $0.trimmingSpaces }
            guard f.count >= 3 else { return nil }
            return .object(["name": .string(f[0]), "memory": Double(f[1]).map { .int(Int64($0 * 1_048_576)) } ?? .null,
                            "driver": .string(f[2])])
        }
    }
}

extension String {
    var trimmingNewlines: String {
        var s = Substring(self)
        while let l = s.last, l == "\n" || l == "\r" || l == " " { s = s.dropLast() }
        return String(s)
    }

    func replacingPrefix(_ prefix: String, with replacement: String) -> String {
        hasPrefix(prefix) ? replacement + dropFirst(prefix.count) : self
    }
}
