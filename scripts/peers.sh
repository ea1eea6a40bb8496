# Installs the real protocol peers the tests and benchmarks talk to, each
# pinned, into $CAIRN_CACHE (outside the clone, reused while it survives),
# and exports where they are: CAIRN_TEST_DVC, CAIRN_TEST_MOTO, CAIRN_TEST_GARAGE.
# Sourced by scripts/test.sh and bench/run.sh.

: "${CAIRN_CACHE:?set CAIRN_CACHE}"
mkdir -p "$CAIRN_CACHE"
DVC_VERSION="3.67.1"
MOTO_VERSION="5.2.5"
GARAGE_VERSION="2.5.0"
# venv_tool DIR REQUIREMENT PROBE...: a virtualenv in DIR holding
# REQUIREMENT, (re)made unless the PROBE command (relative to DIR/bin) runs.
venv_tool() {
    local dir="$1" requirement="$2"
    shift 2
    if ! "$dir/bin/$1" "${@:2}" >/dev/null 2>&1; then
        echo "== installing $requirement into $dir"
        rm -rf "$dir"
        python3 -m venv "$dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check "$requirement"
    fi
}

venv_tool "$CAIRN_CACHE/dvc-$DVC_VERSION" "dvc[s3]==$DVC_VERSION" dvc --version
export CAIRN_TEST_DVC="$CAIRN_CACHE/dvc-$DVC_VERSION/bin/dvc"
echo "== dvc $("$CAIRN_TEST_DVC" --version)"

# moto's S3 server, in a virtualenv of its own (its pins clash with dvc-s3's).
venv_tool "$CAIRN_CACHE/moto-$MOTO_VERSION" "moto[server]==$MOTO_VERSION" moto_server --help
export CAIRN_TEST_MOTO="$CAIRN_CACHE/moto-$MOTO_VERSION/bin/moto_server"

# Garage, a production S3 server; building it takes ~15 minutes, so it is
# installed once into the cache. Only the lmdb engine: the tests and the
# benchmarks run it on lmdb, and bundled SQLite would only add build time.
garage_root="$CAIRN_CACHE/garage-$GARAGE_VERSION"
if ! "$garage_root/bin/garage" --version >/dev/null 2>&1; then
    echo "== building garage $GARAGE_VERSION into $garage_root (slow, once)"
    CARGO_TARGET_DIR="$CAIRN_CACHE/garage-build" RUSTC_WORKSPACE_WRAPPER= cargo install garage --quiet --locked \
        --version "$GARAGE_VERSION" --no-default-features --features bundled-libs,lmdb \
        --root "$garage_root"
    rm -rf "$CAIRN_CACHE/garage-build"
fi
export CAIRN_TEST_GARAGE="$garage_root/bin/garage"
echo "== $("$CAIRN_TEST_GARAGE" --version)"

# GitHub's webhook payload examples (octokit), replayed by tests/webhook_examples.rs.
WEBHOOKS_EXAMPLES_VERSION="7.6.1"
webhooks_examples_root="$CAIRN_CACHE/webhooks-examples-$WEBHOOKS_EXAMPLES_VERSION"
webhooks_examples_pkg="$webhooks_examples_root/node_modules/@octokit/webhooks-examples"
if [ ! -f "$webhooks_examples_pkg/api.github.com/index.json" ]; then
    echo "== installing @octokit/webhooks-examples $WEBHOOKS_EXAMPLES_VERSION into $webhooks_examples_root"
    rm -rf "$webhooks_examples_root"
    npm install --prefix "$webhooks_examples_root" --no-audit --no-fund --silent \
        "@octokit/webhooks-examples@$WEBHOOKS_EXAMPLES_VERSION"
fi
export CAIRN_TEST_WEBHOOK_EXAMPLES="$webhooks_examples_pkg"
