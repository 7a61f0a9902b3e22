import MLVBasics
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
    /// in the config file (`AWS_CONFIG_FILE`, else `~/.aws/config`).
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
        for (path, section) in [(files.credentials, profile), (files.config, files.configSection(profile))] {
            guard let ini = try AWSConfigFiles.read(path, location: location) else {
                looked.append("\(path) (no such file)")
                continue
            }
            guard let values = ini[section] else {
                looked.append("\(path) (no [\(section)])")
                continue
            }
            if let id = values["aws_access_key_id"], let secret = values["aws_secret_access_key"], !id.isEmpty, !secret.isEmpty {
                return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: values["aws_session_token"],
                                      source: "profile '\(profile)' in \(path)")
            }
            looked.append("\(path) ([\(section)] has no aws_access_key_id and aws_secret_access_key)")
        }
        throw RemoteError(.unauthorized, location: location,
                          "no AWS credentials for profile '\(profile)'; looked at: " + looked.joined(separator: ", "))
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
