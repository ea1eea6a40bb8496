#!/usr/bin/env bash
# Runs every test of cairn: formatting, lints, unit and integration tests,
# the interoperability tests against the real DVC client, and the README's
# demo command. Installs the DVC client into a cached virtualenv first.
set -euo pipefail
cd "$(dirname "$0")/.."
CAIRN_CACHE="${CAIRN_CACHE:-$HOME/.cache/cairn-ci}"
DVC_VERSION="3.67.1"
venv="$CAIRN_CACHE/dvc-$DVC_VERSION"

if ! "$venv/bin/dvc" --version >/dev/null 2>&1; then
    echo "== installing dvc $DVC_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "dvc[s3]==$DVC_VERSION"
fi
export CAIRN_TEST_DVC="$venv/bin/dvc"
echo "== dvc $("$CAIRN_TEST_DVC" --version)"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test
echo "== README demo"
scripts/demo.sh
