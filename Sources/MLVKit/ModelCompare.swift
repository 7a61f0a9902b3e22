import MLVBasics
import MLVModel
import MLVStore

/// One model version as `mlv compare` sees it.
public struct ComparedModel: Sendable {
    public var ref: Resolved
    public var manifest: ModelManifest
    /// The run that produced it (`ModelManifest.run`), when recorded and present.
    public var run: RunRecord?
    /// Why there is no run: "no run recorded", or the run id the manifest names but the
    /// store does not hold.
    public var runNote: String?
    public var stages: [String]
    public var aliases: [String]
    /// The eval inputs (role `eval`) of its run, as `NAME@vN#SPLIT`, sorted.
    public var evalSet: [String]
}

/// Whether two models were evaluated on the same test set.
public enum EvalVerdict: String, Sendable {
    /// The same dataset versions and splits.
    case same
    /// Different dataset versions (or splits) whose eval content is identical: the same trees.
    case sameContent = "same-content"
    /// Different content: the metrics are not comparable.
    case different
    /// One or both have no recorded eval set.
    case missing
}

/// `mlv compare A B`.
public struct ModelComparison: Sendable {
    public var old: ComparedModel
    public var new: ComparedModel
    public var metrics: [MetricChange]
    /// Only params that differ; empty unless both have a run.
    public var params: [FieldChange]
    /// Every non-eval input role of either run (or of the manifests, without runs).
    public var training: [InputComparison]
    public var eval: EvalVerdict
    /// A sentence that says which eval sets, and why the verdict.
    public var evalNote: String
    public var environment: EnvironmentDiff
}

extension Repository {
    /// The content tree of one eval input: the split's tree, or the version's root.
    func evalTree(_ input: Input) throws -> ObjectID {
        let content = try artifactContent(input.id)
        if let split = input.split {
            guard let s = content.splits[split] else {
                throw MLVError.damaged("eval input \(input.id.short) has no split '\(split)'")
            }
            return s.tree
        }
        return content.root
    }

    func comparedModel(_ ref: String) throws -> ComparedModel {
        let r = try resolveModel(ref)
        let m = try modelManifest(r.id)
        var run: RunRecord?
        var note: String?
        if let id = m.run {
            if let manifestID = try wrap({ try refs.run(id) }) {
                run = RunRecord(run: id, id: manifestID, manifest: try runManifest(manifestID))
            } else {
                note = "run \(id) is named by the manifest but not recorded in this store"
            }
        } else {
            note = "no run recorded"
        }
        let state = try registryHead(model: r.name)?.event.state ?? RegistryState()
        let evals = run?.manifest.inputs.filter { $0.role == "eval" } ?? []
        let names = try versionNames(for: Set(evals.map(\.id)), hints: evals.compactMap(\.ref))
        return ComparedModel(ref: r, manifest: m, run: run, runNote: note, stages: state.stages(of: r.version),
                             aliases: state.aliases.filter { $0.value.version == r.version }.keys.sorted(),
                             evalSet: evals.map { (names[$0.id] ?? $0.id.short) + ($0.split.map { "#\($0)" } ?? "") }.sorted())
    }

    /// Puts two model versions side by side: metrics, params, training data, the eval
    /// set (the `eval` inputs of each model's run, compared by content: the split's tree,
    /// so identical data under two dataset versions counts as the same test set),
    /// environment, and the stages and aliases each holds. A model without a run is
    /// compared on what it has.
    /// - Throws: `resolveModel`'s errors (unknown model or version, not a model).
    public func compareModels(_ a: String, _ b: String) throws -> ModelComparison {
        let x = try comparedModel(a), y = try comparedModel(b)
        let rx = x.run?.manifest, ry = y.run?.manifest
        let evalX = rx?.inputs.filter { $0.role == "eval" } ?? [], evalY = ry?.inputs.filter { $0.role == "eval" } ?? []
        let trainX = rx?.inputs.filter { $0.role != "eval" } ?? x.manifest.inputs
        let trainY = ry?.inputs.filter { $0.role != "eval" } ?? y.manifest.inputs

        let verdict: EvalVerdict
        let note: String
        let shownX = x.evalSet.joined(separator: ", "), shownY = y.evalSet.joined(separator: ", ")
        if evalX.isEmpty || evalY.isEmpty {
            verdict = .missing
            let which = evalX.isEmpty && evalY.isEmpty ? "neither \(x.ref.display) nor \(y.ref.display) has a"
                : "\(evalX.isEmpty ? x.ref.display : y.ref.display) has no"
            note = "\(which) recorded eval set: their metrics cannot be checked for comparability"
        } else if Set(evalX.map { $0.id.hex + "#" + ($0.split ?? "") }) == Set(evalY.map { $0.id.hex + "#" + ($0.split ?? "") }) {
            verdict = .same
            note = "both were evaluated on \(shownX)"
        } else if Set(try evalX.map(evalTree)) == Set(try evalY.map(evalTree)) {
            verdict = .sameContent
            note = "same test set content under different versions: \(x.ref.display) on \(shownX), \(y.ref.display) on \(shownY)"
        } else {
            verdict = .different
            note = "DIFFERENT TEST SETS: \(x.ref.display) was evaluated on \(shownX), \(y.ref.display) on \(shownY); their metrics are not comparable"
        }
        let envX = try x.run.flatMap(environment(of:)), envY = try y.run.flatMap(environment(of:))
        return ModelComparison(old: x, new: y, metrics: metricChanges(rx?.metrics ?? [:], ry?.metrics ?? [:]),
                               params: rx != nil && ry != nil ? changes(rx!.params, ry!.params) : [],
                               training: try compareInputs(trainX, trainY), eval: verdict, evalNote: note,
                               environment: EnvironmentDiff(envX, envY))
    }
}
