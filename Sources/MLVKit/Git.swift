import MLVBasics
#if canImport(Glibc)
import Glibc
#endif

/// What one git command printed and how it ended.
struct GitOutput {
    var status: Int32
    var stdout: [UInt8]
    var text: String { String(decoding: stdout, as: UTF8.self).trimmingCharacters(in: "\n") }
}

extension Repository {
    /// Runs `git -C <repository root> ARGS` (found on PATH), collecting stdout; stderr is
    /// discarded and stdin is /dev/null.
    /// - Throws: `.invalidArgument` when git cannot be started.
    func git(_ arguments: [String]) throws -> GitOutput {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw MLVError.invalidArgument("cannot run git: pipe failed (errno \(errno))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        let argv: [UnsafeMutablePointer<CChar>?] = (["git", "-C", root] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, "git", &actions, nil, argv, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            throw MLVError.invalidArgument("cannot run git (is it installed?): errno \(rc)")
        }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n > 0 { out += buffer[0..<n] } else if n == 0 || errno != EINTR { break }
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7f) == 0
        return GitOutput(status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), stdout: out)
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
