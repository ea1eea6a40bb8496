#!/usr/bin/env bash
# Every performance benchmark of cairn, each side by side with its reference
# measured in the same run, then one table of target, measured, reference,
# ratio and met (bench/table.py; exit status 1 if a target was missed):
#   - pipelines.toml validation of 1,000 pipelines (< 100 ms)
#   - webhook intake (10,000 deliveries/s, p99 < 5 ms) and the idle
#     service's RSS (< 30 MB): benches/intake.rs
#   - orchestration overhead of a 3-task local run against the tasks' own
#     time (< 50 ms): benches/orchestration.rs
#   - the data path (bench/transfer.py): cairn publish/fetch against
#     dvc add + push / dvc pull, md5sum and rclone, on s3s-fs and Garage
# Installs what it needs into the same cache as scripts/test.sh.
# Usage: bench/run.sh [--markdown] [transfer.py options, e.g. --servers s3s --size-mib 256]
set -euo pipefail
cd "$(dirname "$0")/.."
CAIRN_CACHE="${CAIRN_CACHE:-$HOME/.cache/cairn-ci}"
export CAIRN_CACHE
table_opts=()
if [ "${1:-}" = "--markdown" ]; then table_opts=(--markdown); shift; fi
source scripts/peers.sh
command -v rclone >/dev/null || { apt-get update -qq && apt-get install -y -qq rclone >/dev/null; }

cargo build --release --quiet --bin cairn --example s3s_fs_server
target="${CARGO_TARGET_DIR:-target}/release"
# Measure copies: a target folder shared with other builds (CARGO_TARGET_DIR)
# may get another tree's cairn written into it while this runs.
bins="$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-bin.XXXXXX")"
trap 'rm -rf "$bins"' EXIT
cp "$target/cairn" "$target/examples/s3s_fs_server" "$bins/"
export CAIRN_BIN="$bins/cairn" CAIRN_S3S_BIN="$bins/s3s_fs_server"
export CAIRN_GARAGE_BIN="$CAIRN_TEST_GARAGE" CAIRN_DVC_BIN="$CAIRN_TEST_DVC"
export CAIRN_BENCH_ROWS="$bins/rows.jsonl"

echo "== pipelines.toml validation"
cargo bench --quiet --bench config_validate
echo "== webhook intake"
cargo bench --quiet --bench intake
echo "== orchestration overhead"
cargo bench --quiet --bench orchestration
echo "== data path"
python3 bench/transfer.py "$@"
echo
echo "== every target, measured in this run"
python3 bench/table.py "$CAIRN_BENCH_ROWS" "${table_opts[@]}"
