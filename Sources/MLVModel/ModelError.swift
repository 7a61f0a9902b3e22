/// A stored document (tree or manifest) that does not have the expected shape.
public struct ModelError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
