import MLVCommands

// Synchronous on the main thread: no command awaits anything, and an async main would
// start the concurrency runtime's thread pool on every invocation.
@main
struct Entrypoint {
    static func main() {
        MLV.main()
    }
}
