import MLVBasics
import MLVTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

@testable import MLVRemote

@Suite("AWS credentials")
struct AWSCredentialsTests {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

    @Test("the environment wins when no profile is named")
    func environment() throws {
        let env = ["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": "tok", "HOME": "/nonexistent"]
        let c = try AWSCredentials.resolve(environment: env, location: "s3://b")
        #expect(c == AWSCredentials(accessKeyID: "AKIDENV", secretAccessKey: secret, sessionToken: "tok", source: "environment"))
        #expect(!"\(c)".contains(secret))
        #expect(!"\(c)".contains("tok"))
    }

    @Test("profiles from the shared credentials file, the config file, and AWS_PROFILE")
    func files() throws {
        let dir = try TemporaryDirectory(prefix: "mlv-aws")
        try FS.makeDirectories(dir.appending(".aws"))
        try FS.atomicWrite(dir.appending(".aws/credentials"), Array("""
            # comment
            [default]
            aws_access_key_id = AKIDDEFAULT
            aws_secret_access_key = \(secret)

            [team]
            aws_access_key_id=AKIDTEAM
            aws_secret_access_key=teamsecret
            aws_session_token = teamtoken
            """.utf8), durable: false)
        try FS.atomicWrite(dir.appending(".aws/config"), Array("""
            [default]
            region = eu-west-1
            [profile cfg]
            region = ap-south-1
            aws_access_key_id = AKIDCFG
            aws_secret_access_key = cfgsecret
            s3 =
              addressing_style = path
            """.utf8), durable: false)
        let env = ["HOME": dir.path]
        #expect(try AWSCredentials.resolve(environment: env, location: "s3://b").accessKeyID == "AKIDDEFAULT")
        let team = try AWSCredentials.resolve(environment: env.merging(["AWS_PROFILE": "team"]) { $1 }, location: "s3://b")
        #expect(team.accessKeyID == "AKIDTEAM")
        #expect(team.sessionToken == "teamtoken")
        #expect(try AWSCredentials.resolve(environment: env, profile: "cfg", location: "s3://b").accessKeyID == "AKIDCFG")
        // An explicit profile beats keys in the environment.
        let both = env.merging(["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "x"]) { $1 }
        #expect(try AWSCredentials.resolve(environment: both, profile: "team", location: "s3://b").accessKeyID == "AKIDTEAM")
        #expect(try AWSCredentials.region(environment: env, location: "s3://b") == "eu-west-1")
        #expect(try AWSCredentials.region(environment: env, profile: "cfg", location: "s3://b") == "ap-south-1")
        #expect(try AWSCredentials.region(environment: env.merging(["AWS_REGION": "us-west-2"]) { $1 }, location: "s3://b") == "us-west-2")
        // AWS_SHARED_CREDENTIALS_FILE moves the credentials file.
        try FS.atomicWrite(dir.appending("other"), Array("[default]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = o\n".utf8), durable: false)
        let moved = env.merging(["AWS_SHARED_CREDENTIALS_FILE": dir.appending("other")]) { $1 }
        #expect(try AWSCredentials.resolve(environment: moved, location: "s3://b").accessKeyID == "AKIDOTHER")
    }

    @Test("missing credentials: unauthorized, naming every place looked at")
    func missing() throws {
        let dir = try TemporaryDirectory(prefix: "mlv-aws")
        do {
            _ = try AWSCredentials.resolve(environment: ["HOME": dir.path, "AWS_PROFILE": "nobody"], location: "s3://team-ml/mlv")
            Issue.record("credentials found where there are none")
        } catch let e as RemoteError {
            #expect(e.kind == .unauthorized)
            let text = "\(e)"
            #expect(text.hasPrefix("s3://team-ml/mlv"))
            #expect(text.contains("AWS_ACCESS_KEY_ID"))
            #expect(text.contains("profile 'nobody'"))
            #expect(text.contains(dir.appending(".aws/credentials")))
            #expect(text.contains(dir.appending(".aws/config")))
        }
    }

    @Test("half a key in the environment is an error that names the missing variable, not the value")
    func incomplete() throws {
        do {
            _ = try AWSCredentials.resolve(environment: ["AWS_SECRET_ACCESS_KEY": secret, "HOME": "/nonexistent"], location: "s3://b")
            Issue.record("incomplete credentials accepted")
        } catch let e as RemoteError {
            #expect(e.kind == .unauthorized)
            #expect("\(e)".contains("AWS_ACCESS_KEY_ID is not set"))
            #expect(!"\(e)".contains(secret))
        }
    }

    /// A config file whose profile `p` runs `script` (written with `body`) as its
    /// credential_process, with `args` after it.
    func processProfile(_ body: String, args: String = "", credentials: String? = nil) throws -> (TemporaryDirectory, [String: String]) {
        let dir = try TemporaryDirectory(prefix: "mlv-aws")
        let script = dir.appending("creds.sh")
        try FS.atomicWrite(script, Array("#!/bin/sh\n\(body)\n".utf8), durable: false)
        #expect(chmod(script, 0o755) == 0)
        try FS.atomicWrite(dir.appending("config"), Array("[profile p]\ncredential_process = \(script) \(args)\n".utf8), durable: false)
        var env = ["HOME": dir.path, "AWS_CONFIG_FILE": dir.appending("config"), "AWS_PROFILE": "p", "PATH": "/usr/bin:/bin"]
        if let credentials {
            try FS.atomicWrite(dir.appending("credentials"), Array(credentials.utf8), durable: false)
            env["AWS_SHARED_CREDENTIALS_FILE"] = dir.appending("credentials")
        }
        return (dir, env)
    }

    func refusal(_ env: [String: String]) -> String? {
        do {
            _ = try AWSCredentials.resolve(environment: env, location: "s3://b")
            return nil
        } catch let e as RemoteError {
            #expect(e.kind == .unauthorized)
            return "\(e)"
        } catch {
            return "unexpected \(error)"
        }
    }

    @Test("credential_process: the profile's command prints the key, as for SSO")
    func credentialProcess() throws {
        let json = #"{"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "procsecret", "SessionToken": "proctoken", "Expiration": "2999-01-01T00:00:00Z"}"#
        // The arguments arrive split as a shell would split them, quotes removed.
        let (dir, env) = try processProfile("[ \"$1\" = 'a b' ] && [ \"$2\" = c ] || exit 9\necho '\(json)'", args: "'a b' \"c\"")
        _ = dir
        let c = try AWSCredentials.resolve(environment: env, location: "s3://b")
        #expect(c.accessKeyID == "AKIDPROC" && c.secretAccessKey == "procsecret" && c.sessionToken == "proctoken")
        #expect(c.source.contains("credential_process of profile 'p'"))
        // Keys in the credentials file come first, as for the AWS CLI.
        let (dir2, env2) = try processProfile("exit 1", credentials: "[p]\naws_access_key_id = AKIDFILE\naws_secret_access_key = s\n")
        _ = dir2
        #expect(try AWSCredentials.resolve(environment: env2, location: "s3://b").accessKeyID == "AKIDFILE")
    }

    @Test("credential_process that fails, prints something else or hands out expired keys: unauthorized, saying which")
    func credentialProcessRefusals() throws {
        let (d1, failing) = try processProfile("echo 'token expired; run aws sso login' >&2; exit 3")
        let m1 = try #require(refusal(failing))
        #expect(m1.contains("profile 'p'") && m1.contains("exit status 3") && m1.contains("run aws sso login"), "\(m1)")
        let (d2, garbage) = try processProfile("echo not json")
        #expect(try #require(refusal(garbage)).contains("did not print a JSON object"))
        let (d3, version) = try processProfile(#"echo '{"Version": 2, "AccessKeyId": "A", "SecretAccessKey": "S"}'"#)
        #expect(try #require(refusal(version)).contains("only 1 is known"))
        let (d4, expired) = try processProfile(#"echo '{"Version": 1, "AccessKeyId": "A", "SecretAccessKey": "S", "Expiration": "2001-01-01T00:00:00Z"}'"#)
        #expect(try #require(refusal(expired)).contains("expired at 2001-01-01T00:00:00Z"))
        let (d5, unbalanced) = try processProfile("true", args: "'oops")
        #expect(try #require(refusal(unbalanced)).contains("not a command line"))
        _ = (d1, d2, d3, d4, d5)
    }

    @Test("command lines split like a shell's, without expansion")
    func splitting() {
        #expect(AWSConfigFiles.splitCommandLine("aws configure export-credentials --profile x") == ["aws", "configure", "export-credentials", "--profile", "x"])
        #expect(AWSConfigFiles.splitCommandLine(#"  a  'b c'  "d \"e\" $f"  g\ h ''"#) == ["a", "b c", #"d "e" $f"#, "g h", ""])
        #expect(AWSConfigFiles.splitCommandLine("a 'b") == nil)
        #expect(AWSConfigFiles.splitCommandLine(#"a "b"#) == nil)
        #expect(AWSConfigFiles.splitCommandLine("") == [])
    }
}
