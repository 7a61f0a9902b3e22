#!/usr/bin/env bash
# The example pipeline, end to end, on a fresh store: raw CSV -> prep.py -> a cleaned
# dataset (train/ and eval/) -> train.py -> a model -> eval.py -> approved and promoted
# to production. Then a bug slips into prep.py, the pipeline reruns, the new model is
# promoted, and `mlv blame` finds every dataset, run and model the bad code touched,
# including the one in production. Needs only python3 and git.
#
# usage: examples/demo.sh [WORKDIR]   (MLV=path/to/mlv, default: mlv on PATH)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mlv="${MLV:-mlv}"
work="${1:-$(mktemp -d /tmp/mlv-pipeline.XXXXXX)}"
mkdir -p "$work" && cd "$work"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
# Runs a step whose non-zero exit is the point (a CI gate).
expect_fail() { printf '\n\033[1m$ %s\033[0m\n' "$*"; if "$@"; then echo "expected a non-zero exit" >&2; exit 1; else echo "(exit $?)"; fi; }

cp -r "$here/raw" "$here/prep.py" "$here/train.py" "$here/eval.py" .
printf '.mlv/\nout/\n' > .gitignore
export MLV_IDENTITY="alice <alice@example.com>"
export GIT_AUTHOR_NAME=alice GIT_AUTHOR_EMAIL=alice@example.com GIT_COMMITTER_NAME=alice GIT_COMMITTER_EMAIL=alice@example.com
git init -q && git add . && git commit -q -m "pipeline: prep, train, eval"

# One pass of the pipeline; $1 is the version number it will produce.
pipeline() {
  step "$mlv" run --name prep --input raw=points-raw@v1 --output dataset:points-clean=out/clean \
       -- python3 prep.py raw/points.csv out/clean
  step "$mlv" run --name train --input train=points-clean@v"$1" --param model=nearest-centroid \
       --output model:points-clf=out/model.json -- python3 train.py out/clean/train out/model.json
  step "$mlv" run --name eval --input model=points-clf@v"$1" --input eval=points-clean@v"$1" \
       -- python3 eval.py out/model.json out/clean/eval
  MLV_IDENTITY="bob <bob@example.com>" step "$mlv" approve points-clf@v"$1" --for production -m "eval accuracy checked"
  step "$mlv" promote model points-clf@v"$1" --to production -m "pipeline run $1"
}

step "$mlv" init
step "$mlv" stage set production --approvals 1 --distinct-approvers
step "$mlv" add dataset points-raw raw -m "300 labelled points"
pipeline 1
step "$mlv" lineage points-clf@production

# A "harmless refactor" of prep.py that scales y by x: a bug.
sed -i 's|cleaned = \[(i, x / scale, y / scale, label)|cleaned = [(i, x / scale, x / scale, label)|' prep.py
git commit -q -am "prep: tidy the scaling"
bad=$(git rev-parse HEAD)
pipeline 2
step "$mlv" registry points-clf

# Which datasets, runs and models did the bad line touch, and is one in production?
step "$mlv" blame --file prep.py --contains "x / scale, x / scale"
step "$mlv" blame --commit "$bad"
expect_fail "$mlv" blame --commit "$bad" --fail-if-stage production
step "$mlv" taint points-clean@v2 -m "y was scaled by x (commit ${bad:0:12})"
step "$mlv" models
expect_fail "$mlv" promote model points-clf@v2 --to staging -m "try again"
step "$mlv" lineage points-clf@v2 --format mermaid
step "$mlv" audit --verify
printf '\nThe pipeline store is in %s\n' "$work"
