#!/usr/bin/env bash
# Runs every test of cairn: formatting, lints, unit and integration tests
# (with the interoperability tests against the real DVC client and S3
# servers, and every fuzz target's corpus replayed), the deploy/ schema
# check, the dashboard in a headless browser, and the README's demo command.
# Installs the peers first (scripts/peers.sh: DVC, moto, Garage...).
#
# It runs as phases within a budget (CAIRN_CI_BUDGET, minutes, 85 by
# default: CI gives a run 90). Each phase may use what is left of it and no
# more; one that overruns is stopped and named, and one that cannot start in
# time fails at once instead of the whole run timing out. The table at the
# end says where the minutes went, whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
export CAIRN_CACHE="${CAIRN_CACHE:-$HOME/.cache/cairn-ci}"
budget_min="${CAIRN_CI_BUDGET:-85}"

started=$(date +%s)
report=()
summary() {
    local status=$?
    echo
    echo "== time per phase (budget ${budget_min} min)"
    local name took outcome
    for row in "${report[@]}"; do
        IFS='|' read -r name took outcome <<<"$row"
        printf '%-34s %7s s  %s\n' "$name" "$took" "$outcome"
    done
    printf '%-34s %7s s  (%d min %02d s)\n' total "$(($(date +%s) - started))" \
        "$((($(date +%s) - started) / 60))" "$((($(date +%s) - started) % 60))"
    exit "$status"
}
trap summary EXIT

# phase NAME COMMAND...: runs COMMAND in its own shell as one timed phase.
phase() {
    local name="$1"
    shift
    local left=$((budget_min * 60 - ($(date +%s) - started)))
    if [ "$left" -lt 60 ]; then
        report+=("$name|0|not-started")
        echo "cairn ci: phase '$name' cannot start: ${left} s of the ${budget_min} min budget left" >&2
        return 1
    fi
    echo
    echo "== $name"
    local t0 status=0
    t0=$(date +%s)
    timeout --kill-after=30 "$left" "$@" || status=$?
    local took=$(($(date +%s) - t0))
    case "$status" in
        0) report+=("$name|$took|ok") ;;
        124 | 137)
            report+=("$name|$took|over-budget")
            echo "cairn ci: phase '$name' was stopped after ${took} s: the budget ran out" >&2
            return 1
            ;;
        *)
            report+=("$name|$took|failed($status)")
            echo "cairn ci: phase '$name' failed (exit $status)" >&2
            return "$status"
            ;;
    esac
}

phase "peers (install or reuse)" bash scripts/peers.sh
# Now installed: this only exports where they are.
source scripts/peers.sh >/dev/null
phase "cargo fmt --check" cargo fmt --all -- --check

# One build for everything: the lints run inside the test build (clippy's
# driver compiles the workspace's crates as rustc would, linting them on the
# way; dependencies are compiled by plain rustc, once). `cargo clippy`
# would check the whole dependency graph a second time, in metadata-only
# mode that no later build can reuse. Same lints, same `-D warnings`.
export RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver"
export CLIPPY_ARGS="-Dwarnings"
# The dashboard check and the demo run the binary the test build made.
export CAIRN_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/cairn"
phase "build + clippy -D warnings" cargo test --all-targets --no-run --quiet
phase "cargo test" cargo test --quiet
phase "deploy/ schemas" scripts/validate-deploy.sh
phase "dashboard in chromium" scripts/dashboard-check.sh
phase "README demo" scripts/demo.sh
