#!/usr/bin/env bash
# Tools that render and validate deploy/ offline, installed from package registries only and
# cached, so CI pays the build once per machine:
#   - helm (the real renderer of the chart), built from the Go module proxy with `go install`
#     (helm.sh/helm/v4 has no replace directive, so `go install module@version` works);
#   - kubernetes-validate (PyPI), which bundles the Kubernetes API JSON schemas per release.
#
#   scripts/deploy-tools.sh install   build/install what is missing (helm ≈ several min on 2 cores)
#   scripts/deploy-tools.sh env       print PRISM_HELM_BIN and PRISM_KUBE_VALIDATE_BIN exports
#
# Cache: ${PRISM_CACHE_DIR:-$HOME/.cache/prism}/deploy-tools/{helm-<ver>,kubernetes-validate-<ver>}
set -euo pipefail

HELM_VERSION="${PRISM_HELM_VERSION:-v4.3.2}"
KV_VERSION="${PRISM_KUBE_VALIDATE_VERSION:-1.37.0}"
CACHE="${PRISM_CACHE_DIR:-$HOME/.cache/prism}/deploy-tools"
HELM_DIR="$CACHE/helm-$HELM_VERSION"
KV_DIR="$CACHE/kubernetes-validate-$KV_VERSION"
HELM_BIN="$HELM_DIR/bin/helm"
KV_BIN="$KV_DIR/bin/kubernetes-validate"

log() { printf '[deploy-tools] %s\n' "$*" >&2; }
die() { printf '[deploy-tools] ERROR: %s\n' "$*" >&2; exit 1; }

install_helm() {
  if [[ -x "$HELM_BIN" ]] && "$HELM_BIN" version --short >/dev/null 2>&1; then return 0; fi
  command -v go >/dev/null || die "helm is built with Go (install golang); none found on PATH"
  local t0=$SECONDS
  log "building helm $HELM_VERSION from the Go module proxy (go install; log $CACHE/helm-build.log)"
  mkdir -p "$HELM_DIR.tmp/bin"
  if ! GOBIN="$HELM_DIR.tmp/bin" CGO_ENABLED=0 go install -trimpath -ldflags='-s -w' \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >"$CACHE/helm-build.log" 2>&1; then
    tail -n 20 "$CACHE/helm-build.log" >&2
    die "go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION failed"
  fi
  rm -rf "$HELM_DIR" && mv "$HELM_DIR.tmp" "$HELM_DIR"
  log "helm $HELM_VERSION built in $(( SECONDS - t0 ))s: $HELM_BIN"
}

install_kv() {
  if [[ -f "$KV_DIR/.complete" ]] && "$KV_BIN" --version >/dev/null 2>&1; then return 0; fi
  local t0=$SECONDS
  log "installing kubernetes-validate==$KV_VERSION from PyPI into $KV_DIR"
  # A venv records its own path, so it is made under its final name; .complete marks it whole.
  rm -rf "$KV_DIR"
  python3 -m venv "$KV_DIR" >/dev/null || die "python3 -m venv failed (apt-get install -y python3-venv)"
  if ! "$KV_DIR/bin/pip" install --quiet "kubernetes-validate==$KV_VERSION" >"$CACHE/kv-install.log" 2>&1; then
    tail -n 20 "$CACHE/kv-install.log" >&2
    rm -rf "$KV_DIR"
    die "pip install kubernetes-validate==$KV_VERSION failed"
  fi
  touch "$KV_DIR/.complete"
  log "kubernetes-validate $KV_VERSION installed in $(( SECONDS - t0 ))s"
}

case "${1:-}" in
  install)
    mkdir -p "$CACHE"
    exec 7>"$CACHE/.lock"
    flock 7
    install_kv
    install_helm
    ;;
  env)
    echo "export PRISM_HELM_BIN=$HELM_BIN"
    echo "export PRISM_KUBE_VALIDATE_BIN=$KV_BIN"
    ;;
  *) echo "usage: $0 install|env" >&2; exit 2 ;;
esac
