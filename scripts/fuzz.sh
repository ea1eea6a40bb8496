#!/usr/bin/env bash
# Fuzzes cairn's cargo-fuzz targets (fuzz/): each for SECONDS (default 30),
# growing the committed corpus fuzz/corpus/<target>/ from it, the seeds
# (fuzz/seeds/<target>/) and past crashes (fuzz/regressions/<target>/), then
# minimises the corpus (cargo fuzz cmin) and fails if any target crashed.
# Commit the corpus it leaves: `cargo test` replays every input in it on
# stable (tests/hostile_input.rs), so what fuzzing found is checked on every
# run without fuzzing in CI. A crash's input lands in
# fuzz/artifacts/<target>/; copy it into fuzz/regressions/<target>/.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
CAIRN_CACHE="${CAIRN_CACHE:-$HOME/.cache/cairn-ci}"
seconds="${1:-30}"
shift || true
targets=("$@")

fuzz_root="$CAIRN_CACHE/cargo-fuzz-0.13.1"
if ! "$fuzz_root/bin/cargo-fuzz" --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz into $fuzz_root"
    cargo install --quiet --locked cargo-fuzz --version 0.13.1 --root "$fuzz_root"
fi
export PATH="$fuzz_root/bin:$PATH"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install --profile minimal nightly
# The instrumented build of every dependency is slow; keep it between runs.
export CARGO_TARGET_DIR="$CAIRN_CACHE/fuzz-target"
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)

for t in "${targets[@]}"; do
    corpus="fuzz/corpus/$t"
    mkdir -p "$corpus" "fuzz/seeds/$t"
    echo "== fuzz $t for ${seconds}s"
    # -s none: the code under test is safe Rust; coverage guidance is what
    # matters, and the address sanitizer would only slow each execution.
    log="$(mktemp)"
    status=0
    # Past crashes go in too: libFuzzer runs every input of every corpus
    # folder first, so a regression fails here as in tests/hostile_input.rs.
    inputs=("$corpus" "fuzz/seeds/$t")
    [ -d "fuzz/regressions/$t" ] && inputs+=("fuzz/regressions/$t")
    cargo +nightly fuzz run -s none --fuzz-dir fuzz "$t" "${inputs[@]}" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    grep -E '^stat::(number_of_executed_units|peak_rss_mb|new_units_added)|^#[0-9]+ +DONE' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -40 "$log" >&2
        echo "fuzz target $t failed (a crash's input is in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    rm -f "$log"
    # Keep the smallest set of inputs that covers what the corpus covers.
    cargo +nightly fuzz cmin -s none --fuzz-dir fuzz "$t" "$corpus" -- -rss_limit_mb=1024 >/dev/null 2>&1
    echo "   corpus: $(find "$corpus" -type f | wc -l) inputs in $corpus"
done
