#!/usr/bin/env bash
# Renders the kustomize base in deploy/ and validates every object against
# the Kubernetes JSON schemas (kubernetes-validate, strict: unknown fields
# fail). No cluster needed. Installs the validator into a virtualenv under
# $CAIRN_CACHE the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
CAIRN_CACHE="${CAIRN_CACHE:-$HOME/.cache/cairn-ci}"
VENV="$CAIRN_CACHE/venv-kubernetes-validate"
# The Kubernetes version whose schemas the objects must satisfy.
K8S_VERSION="${CAIRN_K8S_VERSION:-1.33.0}"

if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
    echo "== installing kubernetes-validate into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0'
fi

rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
echo "== kubectl kustomize deploy/"
kubectl kustomize deploy/ > "$rendered/all.yaml"
count="$(grep -c '^kind:' "$rendered/all.yaml")"
echo "== kubernetes-validate --strict ($count objects, Kubernetes $K8S_VERSION)"
"$VENV/bin/kubernetes-validate" --strict --kubernetes-version "$K8S_VERSION" "$rendered/all.yaml"
echo "deploy/: $count objects valid"
