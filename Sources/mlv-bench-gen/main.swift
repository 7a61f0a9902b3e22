// Writes a generated lineage history into a fresh store for `scripts/bench --lineage`.
// usage: mlv-bench-gen DIR [--quick]
import MLVTestSupport
#if canImport(Glibc)
import Glibc
#endif

func complain(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

let arguments = CommandLine.arguments.dropFirst()
guard let directory = arguments.first(where: { !$0.hasPrefix("--") }) else {
    complain("usage: mlv-bench-gen DIR [--quick]")
    exit(64)
}
var history = LineageHistory()
if arguments.contains("--quick") {
    history.chains = 200
    history.modelNames = 50
    history.evalRuns = 7_500
}
do {
    try history.generate(in: directory)
    print("generated \(history.runs) runs, \(history.chains * history.depth + 1) dataset versions, \(history.modelNames * history.modelVersions) model versions in \(directory)")
} catch {
    complain("mlv-bench-gen: \(error)")
    exit(1)
}
