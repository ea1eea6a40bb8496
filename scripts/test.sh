#!/usr/bin/env bash
# Runs every test of cairn: formatting, lints, unit and integration tests,
# the interoperability tests against the real DVC client, the dashboard in a
# headless browser, a short run of every fuzz target, and the README's demo
# command. Installs the peers first (scripts/peers.sh: DVC, moto, Garage).
set -euo pipefail
cd "$(dirname "$0")/.."
export CAIRN_CACHE="${CAIRN_CACHE:-$HOME/.cache/cairn-ci}"
source scripts/peers.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test
echo "== deploy/ rendered with kustomize and validated against the Kubernetes schemas"
scripts/validate-deploy.sh
echo "== dashboard in a real browser"
scripts/dashboard-check.sh
echo "== fuzzing: each cargo-fuzz target for 15 s (nightly, installed by the script)"
scripts/fuzz.sh 15
echo "== README demo"
scripts/demo.sh
