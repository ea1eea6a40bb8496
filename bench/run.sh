#!/usr/bin/env bash
# Every performance benchmark of cairn, each side by side with its
# reference in the same run:
#   - pipelines.toml validation of 1,000 pipelines (target < 100 ms)
#   - the data path (bench/transfer.py): cairn publish/fetch against
#     dvc add + push / dvc pull, md5sum and rclone, on s3s-fs and Garage
# Installs what it needs into the same cache as scripts/test.sh.
# Usage: bench/run.sh [transfer.py options, e.g. --servers s3s --size-mib 256]
set -euo pipefail
cd "$(dirname "$0")/.."
CAIRN_CACHE="${CAIRN_CACHE:-$HOME/.cache/cairn-ci}"
export CAIRN_CACHE
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

echo "== pipelines.toml validation"
cargo bench --quiet --bench config_validate
echo "== data path"
python3 bench/transfer.py "$@"
