import MLVBasics
import MLVModel
#if canImport(Glibc)
import Glibc
#endif

/// An AWS access key, found where the AWS CLI looks. Its description never shows the
/// secret or the session token, so it cannot leak into a log or an error message.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// Where they came from, for messages: `environment` or `profile 'x' in <file>`.
    public var source: String

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, source: String = "explicit") {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.source = source
    }

    public var description: String { "access key \(accessKeyID) (secret hidden) from \(source)" }

    /// The process environment as a dictionary (`environ`).
    public static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let text = String(cString: entry)
            if let eq = text.firstIndex(of: "=") {
                result[String(text[..<eq])] = String(text[text.index(after: eq)...])
            }
            p += 1
        }
        return result
    }

    /// Finds credentials as the AWS CLI does: `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` (with `AWS_SESSION_TOKEN`) unless a profile is named;
    /// then the profile (`profile`, else `AWS_PROFILE`, else `default`) in the shared
    /// credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`), then
    /// the profile's `credential_process` (in either file; how SSO and other short-lived
    /// credentials reach tools: `aws configure export-credentials`, for one), then keys in
    /// the config file (`AWS_CONFIG_FILE`, else `~/.aws/config`).
    /// - Throws: `RemoteError.unauthorized` naming every place looked at (never a value)
    ///   when none has a complete key; `.failed` when a file cannot be read.
    public static func resolve(environment env: [String: String], profile explicitProfile: String? = nil,
                               location: String) throws -> AWSCredentials {
        var looked: [String] = []
        if explicitProfile == nil {
            let id = env["AWS_ACCESS_KEY_ID"].flatMap { $0.isEmpty ? nil : $0 }
            let secret = env["AWS_SECRET_ACCESS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
            if let id, let secret {
                return AWSCredentials(accessKeyID: id, secretAccessKey: secret,
                                      sessionToken: env["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 },
                                      source: "environment")
            }
            if id != nil || secret != nil {
                throw RemoteError(.unauthorized, location: location,
                                  "AWS credentials incomplete: \(id == nil ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY") is not set while \(id == nil ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") is")
            }
            looked.append("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (not set)")
        }
        let profile = explicitProfile ?? env["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        let files = AWSConfigFiles(environment: env)
        let sections = [(files.credentials, profile), (files.config, files.configSection(profile))]
        var found: [(path: String, section: String, values: [String: String]?)] = []
        for (path, section) in sections {
            guard let ini = try AWSConfigFiles.read(path, location: location) else {
                looked.append("\(path) (no such file)")
                found.append((path, section, nil))
                continue
            }
            found.append((path, section, ini[section]))
        }
        func keys(_ i: Int) -> AWSCredentials? {
            guard let values = found[i].values, let id = values["aws_access_key_id"], let secret = values["aws_secret_access_key"],
                  !id.isEmpty, !secret.isEmpty else { return nil }
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: values["aws_session_token"],
                                  source: "profile '\(profile)' in \(found[i].path)")
        }
        if let c = keys(0) { return c }
        for f in found {
            if let command = f.values?["credential_process"], !command.isEmpty {
                return try fromProcess(command, profile: profile, file: f.path, environment: env, location: location)
            }
        }
        if let c = keys(1) { return c }
        for f in found where f.values != nil || FS.exists(f.path) {
            looked.append(f.values == nil ? "\(f.path) (no [\(f.section)])"
                          : "\(f.path) ([\(f.section)] has no aws_access_key_id and aws_secret_access_key, nor credential_process)")
        }
        throw RemoteError(.unauthorized, location: location,
                          "no AWS credentials for profile '\(profile)'; looked at: " + looked.joined(separator: ", "))
    }

    /// Runs a profile's `credential_process` (split into arguments as the AWS CLI does,
    /// with quotes and backslashes; no shell) and reads the JSON it prints: `Version` 1,
    /// `AccessKeyId`, `SecretAccessKey`, optional `SessionToken` and `Expiration`.
    /// - Throws: `RemoteError.unauthorized` naming the profile and the file when the
    ///   command cannot be started, exits non-zero (with the end of what it wrote to
    ///   stderr), prints something else, or hands out credentials already expired.
    static func fromProcess(_ commandLine: String, profile: String, file: String, environment: [String: String],
                            location: String) throws -> AWSCredentials {
        let source = "credential_process of profile '\(profile)' in \(file)"
        func fail(_ why: String) -> RemoteError { RemoteError(.unauthorized, location: location, "\(source) \(why)") }
        guard let argv = AWSConfigFiles.splitCommandLine(commandLine), !argv.isEmpty else {
            throw fail("is not a command line (unbalanced quotes?)")
        }
        let r: (termination: Termination, stdout: [UInt8], stderr: [UInt8])
        do { r = try Subprocess.capture(argv, environment: environment) } catch {
            throw fail("could not be started: \(error)")
        }
        guard r.termination == .exited(0) else {
            let tail = String(decoding: r.stderr.suffix(300), as: UTF8.self).trimmingSpaces()
            throw fail("failed (\(r.termination.shellStatus == 127 ? "not found" : "exit status \(r.termination.shellStatus)"))" + (tail.isEmpty ? "" : ": \(tail)"))
        }
        guard let json = try? JSON.parse(r.stdout), case .object = json else { throw fail("did not print a JSON object") }
        guard json["Version"]?.int == 1 else { throw fail("printed Version \(json["Version"].map { "\($0)" } ?? "(none)"); only 1 is known") }
        guard let id = json["AccessKeyId"]?.string, !id.isEmpty, let secret = json["SecretAccessKey"]?.string, !secret.isEmpty else {
            throw fail("printed no AccessKeyId and SecretAccessKey")
        }
        if let expiration = json["Expiration"]?.string, let t = Timestamp.parse(expiration), t <= Int64(time(nil)) {
            throw fail("handed out credentials that expired at \(expiration)")
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: json["SessionToken"]?.string, source: source)
    }

    /// The region as the AWS CLI finds it: `AWS_REGION`, `AWS_DEFAULT_REGION`, then
    /// `region` of the profile in the config file; nil when none is set.
    /// - Throws: `RemoteError.failed` when the config file exists but cannot be read.
    public static func region(environment env: [String: String], profile explicitProfile: String? = nil,
                              location: String) throws -> String? {
        for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            if let r = env[name], !r.isEmpty { return r }
        }
        let profile = explicitProfile ?? env["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        let files = AWSConfigFiles(environment: env)
        return try AWSConfigFiles.read(files.config, location: location)?[files.configSection(profile)]?["region"]
    }
}

/// The shared credentials and config files and their INI format.
struct AWSConfigFiles {
    var credentials: String
    var config: String

    init(environment env: [String: String]) {
        let home = env["HOME"] ?? "~"
        credentials = env["AWS_SHARED_CREDENTIALS_FILE"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.aws/credentials"
        config = env["AWS_CONFIG_FILE"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.aws/config"
    }

    /// Splits a command line into arguments as a POSIX shell would without expanding
    /// anything: whitespace separates, single quotes keep everything, double quotes keep
    /// everything but a backslash before `"`, `\\`, `$` or a backtick, and a backslash
    /// outside quotes keeps the next character. Nil for an unbalanced quote.
    static func splitCommandLine(_ line: String) -> [String]? {
        var args: [String] = []
        var current = ""
        var inWord = false
        var chars = Array(line)[...]
        while let c = chars.popFirst() {
            switch c {
            case " ", "\t", "\n":
                if inWord { args.append(current); current = ""; inWord = false }
            case "'":
                inWord = true
                guard let end = chars.firstIndex(of: "'") else { return nil }
                current += String(chars[chars.startIndex..<end])
                chars = chars[(end + 1)...]
            case "\"":
                inWord = true
                var closed = false
                while let d = chars.popFirst() {
                    if d == "\"" { closed = true; break }
                    if d == "\\", let next = chars.first, "\"\\$`".contains(next) { current.append(chars.removeFirst()); continue }
                    current.append(d)
                }
                if !closed { return nil }
            case "\\":
                inWord = true
                if let next = chars.popFirst() { current.append(next) }
            default:
                inWord = true
                current.append(c)
            }
        }
        if inWord { args.append(current) }
        return args
    }

    /// The config file names profiles `[profile NAME]`, except `[default]`.
    func configSection(_ profile: String) -> String {
        profile == "default" ? "default" : "profile \(profile)"
    }

    /// Sections of an INI file (`[name]`, `key = value`, `#` and `;` comments; indented
    /// lines belong to nested settings and are skipped); nil when the file does not exist.
    static func read(_ path: String, location: String) throws -> [String: [String: String]]? {
        let bytes: [UInt8]?
        do { bytes = try FS.readFileIfExists(path) } catch {
            throw RemoteError(.failed, location: location, "cannot read \(path): \(error)")
        }
        guard let bytes else { return nil }
        return parse(String(decoding: bytes, as: UTF8.self))
    }

    static func parse(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }) {
            if rawLine.first == " " || rawLine.first == "\t" { continue }
            let line = rawLine.trimmingSpaces()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                let name = String(line.dropFirst().dropLast()).trimmingSpaces()
                current = name
                if sections[name] == nil { sections[name] = [:] }
                continue
            }
            guard let section = current, let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingSpaces().lowercased()
            let value = line[line.index(after: eq)...].trimmingSpaces()
            sections[section]?[key] = value
        }
        return sections
    }
}
