import MLVCommands

@main
struct Entrypoint {
    static func main() async {
        await MLV.main()
    }
}
