import Testing

/// One named check of a conformance suite, run against whatever `Subject` a backend's
/// factory makes (an object store harness, a remote). Shared by every suite so each
/// lists only its checks.
public struct ConformanceCheck<Subject>: Sendable, CustomTestStringConvertible {
    public typealias Factory = () throws -> Subject
    public let name: String
    private let body: @Sendable (Factory) throws -> Void

    init(_ name: String, _ body: @escaping @Sendable (Factory) throws -> Void) {
        self.name = name
        self.body = body
    }

    public func run(_ factory: Factory) throws { try body(factory) }
    public var testDescription: String { name }
}
