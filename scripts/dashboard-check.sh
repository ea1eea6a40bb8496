#!/usr/bin/env bash
# Checks cairn's dashboard in a real browser.
#
# Installs Debian's chromium if it is missing, builds cairn (unless CAIRN_BIN
# names a binary already built), makes a scratch
# repository with two pipelines and real runs (two versions committed, a
# failed run, a proposal waiting on its branch), serves it with
# `cairn serve --repo` on 127.0.0.1 with a port the system picks, and has
# scripts/dashboard_check.py take headless screenshots of every page and
# check what is on them. Everything it starts is stopped and removed on exit.
#
#   scripts/dashboard-check.sh                               # check
#   scripts/dashboard-check.sh --save-screenshot docs/dashboard.png
#   CAIRN_DASHBOARD_SHOTS=/tmp/shots scripts/dashboard-check.sh   # keep every screenshot
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT=$PWD

SAVE=""
if [[ "${1:-}" == "--save-screenshot" ]]; then
    SAVE="$PROJECT/${2:?--save-screenshot needs a path}"
fi

if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing chromium (Debian package)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [[ -z "${CAIRN_BIN:-}" ]]; then
    echo "== building cairn"
    cargo build --quiet --bin cairn
fi
CAIRN="${CAIRN_BIN:-${CARGO_TARGET_DIR:-$PROJECT/target}/debug/cairn}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-dashboard.XXXXXX")
SERVER=""
cleanup() {
    if [[ -n "$SERVER" ]]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== a repository with runs, in $WORK"
REPO="$WORK/repo"
mkdir -p "$REPO/etl"
cd "$REPO"
git init --quiet --initial-branch=main
git config user.name "Dashboard Check"
git config user.email "dashboard@example.invalid"
cat > pipelines.toml <<'TOML'
[pipelines.sales]
dataset = "data/sales.csv"
schedule = "0 6 * * 1"
timezone = "Europe/Paris"
on_push = { paths = ["etl/**"] }
merge = "direct"

[pipelines.sales.tasks.extract]
command = ["sh", "etl/extract.sh"]

[pipelines.sales.tasks.clean]
command = ["sh", "-c", "echo cleaning rows; sleep 1"]
needs = ["extract"]

[pipelines.sales.tasks.enrich]
command = ["sh", "-c", "echo enriching; sleep 0.3"]
needs = ["extract"]

[pipelines.sales.tasks.report]
command = ["sh", "etl/report.sh"]
needs = ["clean", "enrich"]

[pipelines.inventory]
dataset = "data/inventory"
schedule = "*/15 * * * *"
merge = "direct"

[pipelines.inventory.tasks.count]
command = ["sh", "-c", "mkdir -p \"$CAIRN_DATASET\" && echo shelf,42 > \"$CAIRN_DATASET/a.csv\" && echo shelf,7 > \"$CAIRN_DATASET/b.csv\""]
TOML
cat > etl/extract.sh <<'SH'
mkdir -p "$(dirname "$CAIRN_DATASET")"
[ -f "$CAIRN_DATASET" ] || echo "id,amount" > "$CAIRN_DATASET"
i=0
while [ $i -lt 200 ]; do echo "$CAIRN_RUN_ID-$i,$i" >> "$CAIRN_DATASET"; i=$((i + 1)); done
echo "extracted 200 rows into $CAIRN_DATASET"
SH
cat > etl/report.sh <<'SH'
if [ -f etl/FAIL ]; then
  echo "<script>alert('report')</script> failed" >&2
  exit 3
fi
echo "report ok"
SH
"$CAIRN" init . --remote "$WORK/remote" >/dev/null
git add -A
git commit --quiet -m "Add the sales and inventory pipelines"

"$CAIRN" run sales >/dev/null 2>&1
"$CAIRN" run inventory >/dev/null 2>&1
"$CAIRN" run sales >/dev/null 2>&1
touch etl/FAIL
git add -A
git commit --quiet -m "Break the report"
if "$CAIRN" run sales >/dev/null 2>&1; then
    echo "the broken run should have failed" >&2
    exit 1
fi
git rm --quiet etl/FAIL
git commit --quiet -m "Fix the report"
"$CAIRN" run sales --merge review >/dev/null 2>&1
"$CAIRN" runs --output json > "$WORK/runs.json"

echo "== cairn serve --repo on 127.0.0.1"
CAIRN_RESYNC_INTERVAL=1h "$CAIRN" serve --repo "$REPO" --listen 127.0.0.1:0 \
    --insecure-no-signature 2> "$WORK/serve.log" &
SERVER=$!
ADDR=""
for _ in $(seq 1 300); do
    ADDR=$(sed -n 's/^cairn: listening on //p' "$WORK/serve.log" | head -n1)
    [[ -n "$ADDR" ]] && break
    if ! kill -0 "$SERVER" 2>/dev/null; then
        cat "$WORK/serve.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z "$ADDR" ]]; then
    echo "cairn serve did not start:" >&2
    cat "$WORK/serve.log" >&2
    exit 1
fi
echo "   $ADDR"

echo "== checking the pages in chromium"
mkdir -p "$WORK/shots"
ARGS=(--url "$ADDR" --runs "$WORK/runs.json" --out "$WORK/shots")
if [[ -n "$SAVE" ]]; then
    ARGS+=(--save "$SAVE")
fi
STATUS=0
python3 "$PROJECT/scripts/dashboard_check.py" "${ARGS[@]}" || STATUS=$?
if [[ -n "${CAIRN_DASHBOARD_SHOTS:-}" ]]; then
    mkdir -p "$CAIRN_DASHBOARD_SHOTS"
    cp "$WORK"/shots/*.png "$CAIRN_DASHBOARD_SHOTS"/
    echo "screenshots in $CAIRN_DASHBOARD_SHOTS"
fi
exit "$STATUS"
