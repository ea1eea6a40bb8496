#!/usr/bin/env bash
# The main job on the embedded default: builds cairn, prepares a scratch git
# repository (never this one) with the example pipeline and a local DVC
# remote, runs the pipeline three times (review, then direct twice) and
# shows where the pointer commits are.
set -euo pipefail
project="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release --quiet --manifest-path "$project/Cargo.toml"
cairn="${CARGO_TARGET_DIR:-$project/target}/release/cairn"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/cairn-demo.XXXXXX")"
repo="$scratch/repo"
mkdir -p "$repo"
cp "$project/pipelines.toml" "$repo/"
cp -r "$project/etl" "$repo/"
git -C "$repo" init --quiet --initial-branch=main
git -C "$repo" config user.name "cairn demo"
git -C "$repo" config user.email "demo@cairn.invalid"
"$cairn" init "$repo" --remote "$scratch/remote"
git -C "$repo" add -A
git -C "$repo" commit --quiet -m "Add the employee_attrition pipeline"

cd "$repo"
"$cairn" validate
"$cairn" plan employee_attrition
echo
echo "== run 1: review (a pointer commit on cairn/employee_attrition; main untouched)"
"$cairn" run employee_attrition
echo
echo "== runs 2 and 3: --merge direct (each run fetches the previous version and adds a record)"
"$cairn" run employee_attrition --merge direct
"$cairn" run employee_attrition --merge direct
echo
"$cairn" runs
echo
git --no-pager log --oneline --all --graph
echo
echo "== the data at the newest pointer, fetched and verified from the remote"
"$cairn" fetch datasets/employee_attrition.csv
cat datasets/employee_attrition.csv
echo
echo "the newest pointer, at $(git rev-parse HEAD) in $repo:"
cat datasets/employee_attrition.csv.dvc
echo "remote: $scratch/remote"
