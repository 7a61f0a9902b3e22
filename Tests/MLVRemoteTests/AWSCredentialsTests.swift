import MLVBasics
import MLVTestSupport
import Testing

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
}
