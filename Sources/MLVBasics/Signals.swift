#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body` with SIGPIPE blocked in this thread only, and swallows a SIGPIPE it raised:
/// a write to a pipe or socket whose reader is gone then fails with EPIPE instead of
/// killing the process. mlv never changes SIGPIPE's disposition process-wide (a toggle
/// saved and restored by two threads at once can leave it wrong for both, and children
/// inherit an ignored signal); plain socket writes use `MSG_NOSIGNAL`, and this covers
/// OpenSSL's writes and writes to pipes (`Pipes.writeAll`).
func withoutSIGPIPE<R>(_ body: () -> R) -> R {
    var pipe = sigset_t()
    sigemptyset(&pipe)
    sigaddset(&pipe, SIGPIPE)
    var old = sigset_t()
    var before = sigset_t()
    pthread_sigmask(SIG_BLOCK, &pipe, &old)
    sigpending(&before)
    let result = body()
    let code = errno
    var after = sigset_t()
    sigpending(&after)
    if sigismember(&after, SIGPIPE) == 1 && sigismember(&before, SIGPIPE) == 0 {
        var zero = timespec()
        _ = sigtimedwait(&pipe, nil, &zero)
    }
    pthread_sigmask(SIG_SETMASK, &old, nil)
    errno = code
    return result
}
