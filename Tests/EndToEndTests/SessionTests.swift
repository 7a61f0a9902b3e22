import MLVBasics
import MLVModel
import MLVTestSupport
import Testing

/// The real binary, start to finish, the way a user meets it.
@Suite("mlv end to end")
struct SessionTests {
    @Test func wholeSession() throws {
        let s = try Session(identity: "carol@lab")
        let initialized = try s.mlv("init")
        #expect(initialized.stdout == "Initialized empty mlv store in \(s.directory)/.mlv\n")
        try s.mlv("init", status: 5)   // a second init is refused

        try s.write("data", [
            "a.txt": "alpha\n",
            "b.txt": "bravo\n",
            "train/0.bin": .random(seed: 1, count: 20_000),
            "eval/0.bin": .random(seed: 2, count: 10_000),
        ])
        let add1 = try s.mlv("add", "dataset", "mnist", "data", "-m", "first cut", "--meta", "source=e2e",
                             "--split", "train=train/", "--split", "eval=eval")
        #expect(add1.lines.count == 2)
        let header = add1.lines[0].split(separator: " ")
        #expect(header.count == 2 && header[0] == "mnist@v1" && header[1].count == 64)
        let v1 = String(header[1])
        #expect(add1.lines[1].hasPrefix("4 files, ") && add1.lines[1].hasSuffix(" new bytes stored"))

        let again = try s.mlv("add", "dataset", "mnist", "data", "--split", "train=train/", "--split", "eval=eval")
        #expect(again.stdout == "mnist: no changes since mnist@v1 (\(v1.prefix(12))); no new version created\n")

        // Change one file, add one, delete one.
        try s.write("data/a.txt", "alpha, edited\n")
        try s.write("data/c.txt", "charlie\n")
        Scenario.removeTree(s.path("data/b.txt"))

        let status = try s.mlv("status", "mnist")
        #expect(status.lines == [
            "mnist: 3 changes against mnist@v1 in \(s.directory)/data",
            "M  a.txt  (6 B -> 14 B)",
            "D  b.txt  (6 B)",
            "A  c.txt  (8 B)",
        ])
        try s.mlv("status", "mnist", "--exit-code", status: 1)
        let statusJSON = try s.json("status", "mnist")
        #expect(statusJSON["clean"]?.bool == false)
        #expect(statusJSON["changes"]?.array?.count == 3)

        let add2 = try s.json("add", "dataset", "mnist", "data", "--from", "mnist@v1", "-m", "edited")
        #expect(add2["version"]?.int == 2 && add2["created"]?.bool == true && add2["files"]?.int == 4)
        let v2 = try #require(add2["id"]?.string)
        #expect(try s.mlv("status", "mnist").stdout == "mnist: clean (matches mnist@v2)\n")
        try s.mlv("status", "mnist", "--exit-code")

        // datasets, log
        let datasets = try s.mlv("datasets")
        #expect(datasets.lines.first?.hasPrefix("NAME") == true)
        #expect(datasets.lines.count == 2 && datasets.lines[1].hasPrefix("mnist") && datasets.lines[1].contains("v2")
                && datasets.lines[1].hasSuffix("carol@lab"))
        let datasetsJSON = try s.json("datasets")
        #expect(datasetsJSON.array?.map { $0["name"]?.string } == ["mnist"])
        #expect(datasetsJSON.array?.first?["id"]?.string == v2)

        let log = try s.mlv("log", "dataset", "mnist")
        #expect(log.lines.count == 4)
        #expect(log.lines[0].hasPrefix("mnist@v2  \(v2.prefix(12))"))
        #expect(log.lines[1].hasSuffix("edited"))
        #expect(log.lines[2].hasPrefix("mnist@v1  \(v1.prefix(12))"))
        #expect(log.lines[3].hasSuffix("first cut"))
        #expect(try s.json("log", "dataset", "mnist").array?.map { $0["version"]?.int } == [2, 1])

        // ls (whole version, subpath, split, id prefix)
        let ls = try s.mlv("ls", "mnist@v1")
        #expect(ls.lines.map { $0.split(separator: " ").last.map(String.init) } == ["a.txt", "b.txt", "eval/0.bin", "train/0.bin"])
        #expect(ls.lines[0].hasPrefix("644  6 "))
        let lsJSON = try s.json("ls", "mnist@v2")
        #expect(lsJSON.array?.compactMap { $0["path"]?.string } == ["a.txt", "c.txt", "eval/0.bin", "train/0.bin"])
        #expect(try s.json("ls", "mnist@v1#train").array?.compactMap { $0["path"]?.string } == ["0.bin"])
        #expect(try s.json("ls", "mnist@v1", "train").array?.compactMap { $0["path"]?.string } == ["0.bin"])
        #expect(try s.json("ls", String(v1.prefix(8))).array?.count == 4)

        // show
        let show = try s.json("show", "mnist@v1")
        #expect(show["ref"]?["version"]?.int == 1 && show["ref"]?["id"]?.string == v1)
        let manifest = try #require(show["manifest"])
        #expect(manifest["schema"]?.string == "mlv.dataset/1")
        #expect(manifest["author"]?.string == "carol@lab")
        #expect(manifest["message"]?.string == "first cut")
        #expect(manifest["meta"]?["source"]?.string == "e2e")
        #expect(manifest["splits"]?.object?.keys.sorted() == ["eval", "train"])
        let show2 = try s.json("show", "mnist")
        #expect(show2["manifest"]?["inputs"]?.array?.first?["role"]?.string == "parent")
        #expect(show2["manifest"]?["inputs"]?.array?.first?["id"]?.string == v1)
        let showText = try s.mlv("show", "mnist@v2")
        #expect(showText.lines.first == "dataset mnist@v2")
        #expect(showText.stdout.contains("input    parent: mnist@v1"))

        // diff
        let diff = try s.json("diff", "mnist@v1", "mnist@v2")
        #expect(diff["from"]?["version"]?.int == 1 && diff["to"]?["version"]?.int == 2)
        let changes = try #require(diff["changes"]?.array)
        #expect(changes.map { "\($0["change"]?.string ?? "") \($0["path"]?.string ?? "")" } == ["modified a.txt", "deleted b.txt", "added c.txt"])
        #expect(changes[0]["oldSize"]?.int == 6 && changes[0]["newSize"]?.int == 14)
        #expect(changes[1]["oldSize"]?.int == 6 && changes[1]["newSize"] == nil)
        #expect(try s.mlv("diff", "mnist@v1", "mnist@v2").lines.last == "1 added, 1 modified, 1 deleted")

        // checkout, verified byte for byte
        let checkout = try s.mlv("checkout", "mnist@v1", "--to", "out")
        #expect(checkout.stdout.hasPrefix("checked out mnist@v1 into \(s.directory)/out: 4 files"))
        #expect(try Scenario.snapshot(s.path("out")) == [
            "a.txt": "alpha\n", "b.txt": "bravo\n",
            "eval": .directory, "eval/0.bin": .random(seed: 2, count: 10_000),
            "train": .directory, "train/0.bin": .random(seed: 1, count: 20_000),
        ])
        try s.mlv("checkout", "mnist@v1", "--to", "out")    // identical files: no conflict
        try s.mlv("checkout", "mnist@v1#eval", "--to", "evalset")
        #expect(try Scenario.snapshot(s.path("evalset")) == ["0.bin": .random(seed: 2, count: 10_000)])

        // hash agrees with sha256sum, for several files at once
        let hash = try s.mlv("hash", "data/a.txt", "data/train/0.bin")
        let sum = try runProgram("/usr/bin/sha256sum", ["data/a.txt", "data/train/0.bin"], in: s.directory)
        #expect(sum.status == 0)
        #expect(hash.stdout == sum.stdout)
        #expect(try s.json("hash", "data/a.txt").array?.first?["id"]?.string == String(sum.stdout.prefix(64)))

        // fsck and gc
        let fsck = try s.mlv("fsck")
        #expect(fsck.lines.last?.hasSuffix(": no damage") == true)
        try s.mlv("fsck", "--full")
        #expect(try s.json("fsck")["clean"]?.bool == true)
        let gc = try s.mlv("gc", "--dry-run")
        #expect(gc.stdout.hasPrefix("would remove 0 objects"))
        try s.mlv("gc", "--grace", "0")
        try s.mlv("fsck", "--full")

        // config and the identity it records
        try s.mlv("config", "identity", "dave@lab")
        let config = try s.mlv("config")
        #expect(config.lines.first == "format   1")
    }

    @Test func chunksCoverTheFileExactly() throws {
        let s = try Session()
        let data = splitmix64Bytes(seed: 77, count: 700_000)
        try s.write("big.bin", .file(data, mode: 0o644))
        for args in [["chunks", "big.bin"], ["chunks", "big.bin", "--min", "4096", "--avg", "16384", "--max", "65536"]] {
            let r = try s.run(args)
            var expectedOffset = 0
            for line in r.lines {
                let fields = line.split(separator: " ")
                try #require(fields.count == 3, "\(line)")
                let offset = try #require(Int(fields[0])), length = try #require(Int(fields[1]))
                #expect(offset == expectedOffset)
                #expect(String(fields[2]) == SHA256.hash(Array(data[offset..<(offset + length)])).hex)
                expectedOffset += length
            }
            #expect(expectedOffset == data.count)
            #expect(r.lines.count > (args.count > 2 ? 20 : 2))
        }
        let json = try s.json("chunks", "big.bin")
        #expect(json.array?.reduce(0) { $0 + ($1["length"]?.int ?? 0) } == Int64(data.count))
        try s.mlv("chunks", "big.bin", "--avg", "1000", status: 5)   // not a power of two
    }

    @Test func helpListsExactlyTheImplementedCommands() throws {
        let s = try Session()
        let help = try s.mlv("--help")
        var commands: [String] = []
        var inList = false
        for line in help.lines {
            if line == "SUBCOMMANDS:" { inList = true; continue }
            if inList && line.isEmpty { break }
            if inList, line.hasPrefix("  "), !line.hasPrefix("   "), let name = line.split(separator: " ").first {
                commands.append(String(name))
            }
        }
        let implemented = ["init", "add", "datasets", "log", "ls", "show", "status", "diff", "checkout", "run", "rerun", "models", "registry",
                           "stage", "approve", "promote", "alias", "audit", "hash", "chunks", "fsck", "gc", "config"]
        #expect(commands == implemented)
        // Nothing that is not built yet: those are usage errors.
        for missing in ["compare", "blame", "push", "runs"] {
            try s.mlv(missing, status: 64)
        }
        try s.mlv("log", "run", "x", status: 64)
        try s.mlv("add", "run", "x", "y", status: 64)
        try s.mlv("promote", "dataset", "x", status: 64)

        // Every command's help works and lists its exit codes.
        let leaves = ["init", "add dataset", "add model", "datasets", "log dataset", "log model", "ls", "show", "status", "diff", "checkout",
                      "models", "registry", "stage list", "stage add", "stage set", "stage remove", "approve", "promote model",
                      "alias set", "alias remove", "audit", "hash", "chunks", "fsck", "gc", "config"]
        for leaf in leaves {
            let r = try s.run(leaf.split(separator: " ").map(String.init) + ["--help"])
            #expect(r.stdout.contains("USAGE: mlv \(leaf)"), "\(r)")
            let words = r.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            #expect(words.contains("Exit codes"), "mlv \(leaf) --help")
        }
    }
}
