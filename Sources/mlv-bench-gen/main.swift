// Writes a generated history into a fresh store for the benchmarks.
// usage: mlv-bench-gen DIR [--quick]                          a lineage history (scripts/bench --lineage)
//        mlv-bench-gen registry DIR [MODELS [VERSIONS [EVENTS_PER_VERSION]]]   a registry (scripts/bench-registry)
import MLVTestSupport
#if canImport(Glibc)
import Glibc
#endif

func complain(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

let usage = "usage: mlv-bench-gen DIR [--quick] | mlv-bench-gen registry DIR [MODELS [VERSIONS [EVENTS_PER_VERSION]]]"
let arguments = Array(CommandLine.arguments.dropFirst())
do {
    if arguments.first == "registry" {
        guard arguments.count >= 2 else { complain(usage); exit(64) }
        var registry = RegistryHistory()
        let numbers = try arguments.dropFirst(2).map { text -> Int in
            guard let n = Int(text), n > 0 else { complain("mlv-bench-gen: '\(text)' is not a positive number"); exit(64) }
            return n
        }
        if numbers.count > 0 { registry.models = numbers[0] }
        if numbers.count > 1 { registry.versions = numbers[1] }
        if numbers.count > 2 { registry.eventsPerVersion = numbers[2] }
        try registry.generate(in: arguments[1])
        print("generated \(registry.models) models, \(registry.models * registry.versions) versions, \(registry.models * registry.versions * registry.eventsPerVersion) events in \(arguments[1])")
    } else {
        guard let directory = arguments.first(where: { !$0.hasPrefix("--") }) else { complain(usage); exit(64) }
        var history = LineageHistory()
        if arguments.contains("--quick") {
            history.chains = 200
            history.modelNames = 50
            history.evalRuns = 7_500
        }
        try history.generate(in: directory)
        print("generated \(history.runs) runs, \(history.chains * history.depth + 1) dataset versions, \(history.modelNames * history.modelVersions) model versions in \(directory)")
    }
} catch {
    complain("mlv-bench-gen: \(error)")
    exit(1)
}
