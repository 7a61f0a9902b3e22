import MLVBasics

/// What one git command printed and how it ended.
struct GitOutput {
    var status: Int32
    var stdout: [UInt8]
    var text: String { String(decoding: stdout, as: UTF8.self).trimmingCharacters(in: "\n") }
}

extension Repository {
    /// Runs `git -C <repository root> ARGS` (found on PATH), collecting stdout; stdin is
    /// /dev/null and stderr is dropped.
    /// - Throws: `.invalidArgument` when git cannot be started.
    func git(_ arguments: [String]) throws -> GitOutput {
        do {
            let r = try Subprocess.capture(["git", "-C", root] + arguments)
            return GitOutput(status: r.termination.shellStatus, stdout: r.stdout)
        } catch let e as FileSystemError {
            throw MLVError.invalidArgument("cannot run git (is it installed?): \(e)")
        }
    }
}

extension String {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.last == set { s.removeLast() }
        while s.first == set { s.removeFirst() }
        return String(s)
    }
}
