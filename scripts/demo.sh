#!/usr/bin/env bash
# The main job on the embedded default: builds cairn, prepares a scratch git
# repository (never this one) with the example pipeline and a local DVC
# remote, runs the pipeline three times (review, then direct twice), shows
# where the pointer commits are, then starts the service on the same
# repository (`cairn serve --repo`) and lets a commit to etl/ produce the next
# version by itself.
set -euo pipefail
project="$(cd "$(dirname "$0")/.." && pwd)"
# The same build as the tests' (CAIRN_BIN: one made already, as in CI).
if [ -z "${CAIRN_BIN:-}" ]; then
    cargo build --quiet --bin cairn --manifest-path "$project/Cargo.toml"
fi
cairn="${CAIRN_BIN:-${CARGO_TARGET_DIR:-$project/target}/debug/cairn}"

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
echo
echo "== the service: cairn serve --repo watches main; a commit to etl/ starts a run by itself"
log="$scratch/serve.log"
http_get() { python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"; }
CAIRN_WEBHOOK_SECRET="demo-secret" CAIRN_RESYNC_INTERVAL=1s \
    "$cairn" serve --repo "$repo" --listen 127.0.0.1:0 2>"$log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
addr=""
for _ in $(seq 1 300); do
    addr="$(sed -n 's|^cairn: listening on ||p' "$log" | head -n1)"
    [ -n "$addr" ] && http_get "$addr/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
echo "listening on $addr; /readyz: $(http_get "$addr/readyz")"
before="$(git rev-parse HEAD)"
echo "# a comment that changes the ETL" >>etl/modify_data.py
git commit --quiet -am "Tweak the ETL"
proposed=""
for _ in $(seq 1 300); do
    tip="$(git rev-parse refs/heads/cairn/employee_attrition)"
    if [ "$(git rev-parse "$tip^")" = "$(git rev-parse HEAD)" ]; then proposed=yes; break; fi
    sleep 0.1
done
if [ -z "$proposed" ]; then
    echo "demo: the service proposed nothing within 30 s; its log:" >&2
    cat "$log" >&2
    exit 1
fi
echo "the service proposed $(git rev-parse --short refs/heads/cairn/employee_attrition) on cairn/employee_attrition for $(git rev-parse --short HEAD) (was $(git rev-parse --short "$before")):"
git --no-pager log -1 --format='%B' refs/heads/cairn/employee_attrition | sed 's/^/    /'
http_get "$addr/metrics" | grep '^cairn_runs_total' || true
kill "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
