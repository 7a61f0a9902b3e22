// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "mlv",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "mlv", targets: ["mlv"]),
        .library(name: "MLVKit", targets: ["MLVKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // System libraries, wrapped with a module map and a shim header each.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSSL", pkgConfig: "libssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),

        // Hashing, compression, file-system and socket/TLS primitives. The only target that imports C modules.
        // Debug builds compile in the crash points (`CrashPoint`) that the reliability tests arm.
        .target(name: "MLVBasics", dependencies: ["CZlib", "CCrypto", "CSSL", "CXXHash", "CSQLite"], exclude: ["README.md"],
                swiftSettings: [.define("MLV_CRASH_POINTS", .when(configuration: .debug))]),
        // Pure values: canonical JSON, manifests, trees, ref syntax, path rules. No I/O.
        .target(name: "MLVModel", dependencies: ["MLVBasics"], exclude: ["README.md"]),
        // The object store: chunker, packs, index, refs with compare-and-swap, stat cache, gc, fsck.
        .target(name: "MLVStore", dependencies: ["MLVBasics", "MLVModel"], exclude: ["README.md"]),
        // Remotes: the key-value protocol with conditional writes, and where it keeps data.
        .target(name: "MLVRemote", dependencies: ["MLVBasics", "MLVModel"], exclude: ["README.md"]),
        // The library API used by the commands.
        .target(name: "MLVKit", dependencies: ["MLVBasics", "MLVModel", "MLVStore", "MLVRemote"], exclude: ["README.md"]),
        // swift-argument-parser commands: parse, call MLVKit, render.
        .target(name: "MLVCommands", dependencies: [
            "MLVKit", "MLVModel", "MLVStore", "MLVRemote", "MLVBasics",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], exclude: ["README.md"]),
        .executableTarget(name: "mlv", dependencies: ["MLVCommands"], exclude: ["README.md"]),
        .target(name: "MLVTestSupport", dependencies: ["MLVKit", "MLVRemote", "MLVStore", "MLVModel", "MLVBasics"], exclude: ["README.md"]),
        // Benchmark helper: writes a generated lineage history or registry into a store
        // (scripts/bench --lineage, scripts/bench-registry).
        .executableTarget(name: "mlv-bench-gen", dependencies: ["MLVTestSupport"], exclude: ["README.md"]),

        .testTarget(name: "MLVBasicsTests", dependencies: ["MLVBasics", "MLVTestSupport"]),
        .testTarget(name: "MLVModelTests", dependencies: ["MLVModel", "MLVTestSupport"]),
        .testTarget(name: "MLVStoreTests", dependencies: ["MLVStore", "MLVTestSupport"]),
        .testTarget(name: "MLVRemoteTests", dependencies: ["MLVRemote", "MLVTestSupport"]),
        .testTarget(name: "MLVKitTests", dependencies: ["MLVKit", "MLVTestSupport"]),
        .testTarget(name: "MLVCommandsTests", dependencies: ["MLVCommands", "MLVTestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["mlv", "MLVTestSupport"]),
    ]
)
