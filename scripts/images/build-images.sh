#!/usr/bin/env bash
# Builds the test images locally, since no image registry is reachable: ONE Debian rootfs
# (debootstrap --variant=minbase with redis-server, nats-server and postgresql) imported under
# three images with different default commands. One rootfs instead of three saves two debootstrap
# runs, and the three images share a single layer in the engine. A fourth image, Vault, is that
# layer plus one more holding OpenBao's `bao` binary (PRISM_BAO_BIN, the binary that
# `scripts/test-services.sh up vault` caches); without that binary it is not built, and says so.
#
# Usage: DOCKER_HOST=unix:///... [PRISM_BAO_BIN=/path/to/bao] scripts/images/build-images.sh
#   (scripts/services/docker.sh up calls it with the engine's DOCKER_HOST and the bao binary)
#
# Cache: ${PRISM_CACHE_DIR:-$HOME/.cache/prism}/images/rootfs-<suite>-<key>.tar (+ .b2sum), key
# derived from suite, variant, package list, architecture and this recipe's version. The .b2sum
# file is written only after the tarball is complete; a tarball without it, or one that fails
# the check, is rebuilt. Images carry the label prism.rootfs=<key>; an image with the right label
# is not created again. The Vault image also carries prism.bao=<key of the rootfs, `bao version`
# (release and commit) and its own recipe>, so a new bao binary makes a new image.
set -euo pipefail

: "${DOCKER_HOST:?DOCKER_HOST must point at the engine (see scripts/services/docker.sh env)}"
DOCKER_BIN="${DOCKER_BIN:-docker}"
IMAGE_REDIS="${PRISM_IMAGE_REDIS:-prism-local/redis:7}"
IMAGE_NATS="${PRISM_IMAGE_NATS:-prism-local/nats:2}"
IMAGE_POSTGRES="${PRISM_IMAGE_POSTGRES:-prism-local/postgres:15}"
IMAGE_VAULT="${PRISM_IMAGE_VAULT:-prism-local/vault:2}"
BAO_BIN="${PRISM_BAO_BIN:-}"
VAULT_RECIPE=1 # bump when the Vault layer or its config below change

SUITE=bookworm
VARIANT=minbase
PACKAGES=(nats-server postgresql redis-server)
RECIPE=1 # bump when the steps below change what goes into the rootfs
ARCH="$(dpkg --print-architecture)"
CACHE="${PRISM_CACHE_DIR:-$HOME/.cache/prism}/images"
KEY="$(printf '%s\n' "$SUITE" "$VARIANT" "${PACKAGES[*]}" "$ARCH" "recipe=$RECIPE" | sha256sum | cut -c1-16)"
TARBALL="$CACHE/rootfs-$SUITE-$KEY.tar"
SUMFILE="$TARBALL.b2sum"
BASE_IMAGE="prism-local/rootfs:$KEY"

log() { printf '[images] %s\n' "$*" >&2; }
die() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }
dk() { "$DOCKER_BIN" "$@"; }

image_current() { # name -> 0 when present and built from this rootfs key
  local label
  label="$(dk image inspect --format '{{index .Config.Labels "prism.rootfs"}}' "$1" 2>/dev/null)" || return 1
  [[ "$label" == "$KEY" ]]
}

# The Debian mirror the machine's apt already uses (no other host is contacted).
debian_mirror() {
  local uri
  # shellcheck disable=SC2016 # apt's own $(FIELD) placeholders
  uri="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT) $(ORIGIN)' 'Identifier: Packages' 2>/dev/null |
    awk -v s="$SUITE" '$2 == s && $3 == "main" { print $1; exit }')"
  if [[ -z "$uri" ]]; then
    # No downloaded indexes yet: read the sources files (one-line and deb822 formats).
    uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk -v s="$SUITE" '$1 == "deb" && $0 ~ (" " s " ") { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }')"
  fi
  if [[ -z "$uri" ]]; then
    uri="$(awk -v s="$SUITE" '
      /^[[:space:]]*$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0; next }
      $1 == "URIs:" { u = $2 }
      $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
      END { if (u != "" && ok) print u }' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"
  fi
  [[ -n "$uri" ]] || die "no apt source for '$SUITE' found in /etc/apt/sources.list(.d); cannot debootstrap"
  printf '%s\n' "$uri"
}

cache_ok() {
  [[ -f "$TARBALL" && -f "$SUMFILE" ]] && (cd "$CACHE" && b2sum --check --status "$(basename "$SUMFILE")")
}

build_rootfs() {
  local mirror work t0=$SECONDS
  command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
  mirror="$(debian_mirror)"
  work="$CACHE/work-$KEY"
  rm -rf "$work" "$TARBALL" "$SUMFILE" "$TARBALL.partial"
  mkdir -p "$work"
  log "debootstrap --variant=$VARIANT --include=$(IFS=,; echo "${PACKAGES[*]}") $SUITE ($mirror); log: $CACHE/debootstrap.log"
  if ! debootstrap --variant="$VARIANT" --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    "$SUITE" "$work/rootfs" "$mirror" >"$CACHE/debootstrap.log" 2>&1; then
    tail -n 20 "$CACHE/debootstrap.log" | sed 's/^/    /' >&2
    rm -rf "$work"
    die "debootstrap failed (see $CACHE/debootstrap.log)"
  fi
  local root="$work/rootfs"
  # Trim what containers never need: downloaded .debs, apt lists, docs, man pages, locales, and
  # the cluster postgresql-common creates at install time (containers run initdb themselves).
  if [[ -x "$root/usr/bin/pg_dropcluster" ]]; then chroot "$root" pg_dropcluster 15 main 2>/dev/null || true; fi
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/info "$root"/usr/share/locale
  # Postgres entry point: initdb on first start, then run on loopback (used as the image CMD).
  cat >"$root/usr/local/bin/prism-postgres" <<'EOF'
#!/bin/sh
# prism-postgres [postgres options...]: initdb "$PGDATA" when empty, then run postgres on
# 127.0.0.1:$PGPORT. POSTGRES_PASSWORD (optional) sets the superuser password and makes TCP
# connections require it (scram-sha-256); without it TCP connections are trusted.
set -e
: "${PGDATA:=/var/lib/postgresql/data}" "${PGPORT:=5432}" "${POSTGRES_USER:=postgres}"
export PGDATA PGPORT
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    pwfile="$(mktemp)"; printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --auth-local=trust --auth-host=scram-sha-256 --pwfile="$pwfile" >/dev/null
    rm -f "$pwfile"
  else
    initdb -D "$PGDATA" -U "$POSTGRES_USER" -E UTF8 --auth=trust >/dev/null
  fi
fi
exec postgres -D "$PGDATA" -p "$PGPORT" -c listen_addresses=127.0.0.1 -k /tmp "$@"
EOF
  chmod 755 "$root/usr/local/bin/prism-postgres"
  log "debootstrap done in $(( SECONDS - t0 ))s ($(du -sh "$root" | cut -f1)); writing $TARBALL"
  tar --numeric-owner -C "$root" -cf "$TARBALL.partial" .
  mv "$TARBALL.partial" "$TARBALL"
  (cd "$CACHE" && b2sum "$(basename "$TARBALL")" >"$(basename "$SUMFILE").partial" &&
    mv "$(basename "$SUMFILE").partial" "$(basename "$SUMFILE")")
  printf '%s\n' "suite=$SUITE variant=$VARIANT arch=$ARCH recipe=$RECIPE" "packages=${PACKAGES[*]}" "mirror=$mirror" \
    "built=$(date -Is)" >"$TARBALL.info"
  rm -rf "$work"
  log "rootfs cached in $(( SECONDS - t0 ))s"
}

# The rootfs is imported once, as prism-local/rootfs:<key>; each service image is that same layer
# with its own config (command, user, environment), created by `docker load` of an archive that
# holds only a config and a manifest: the engine already has the layer, so nothing is copied
# (0.1 s, where another `docker import` of the tarball takes 5-8 s).
import_base() {
  local t0=$SECONDS
  dk import --change "LABEL prism.rootfs=$KEY" --change "LABEL prism.packages=\"${PACKAGES[*]}\"" \
    "$TARBALL" "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE in $(( SECONDS - t0 ))s"
}

# derive_image name env-json cmd-json user [entrypoint-json layer-tar extra-labels-json]
# With a layer tarball, the image is the rootfs layer plus that one, which the archive carries.
derive_image() {
  local name="$1" env="$2" cmd="$3" user="$4" entrypoint="${5:-null}" extra="${6:-}" labels="${7:-}"
  local diff_id arch dir now diff_ids layers
  diff_id="$(dk image inspect --format '{{index .RootFS.Layers 0}}' "$BASE_IMAGE")"
  arch="$(dk image inspect --format '{{.Architecture}}' "$BASE_IMAGE")"
  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  dir="$(mktemp -d "$CACHE/derive-XXXXXX")"
  diff_ids="\"$diff_id\"" layers='"layer.tar"'
  if [[ -n "$extra" ]]; then
    diff_ids+=",\"sha256:$(sha256sum "$extra" | cut -d' ' -f1)\"" layers+=',"extra.tar"'
    ln "$extra" "$dir/extra.tar" 2>/dev/null || cp "$extra" "$dir/extra.tar"
  fi
  printf '%s\n' \
    "{\"architecture\":\"$arch\",\"os\":\"linux\",\"created\":\"$now\"," \
    " \"config\":{\"Env\":$env,\"Entrypoint\":$entrypoint,\"Cmd\":$cmd,\"User\":\"$user\"," \
    "   \"Labels\":{\"prism.rootfs\":\"$KEY\",\"prism.packages\":\"${PACKAGES[*]}\"$labels}}," \
    " \"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$diff_ids]}," \
    " \"history\":[{\"created\":\"$now\",\"created_by\":\"scripts/images/build-images.sh from $BASE_IMAGE\"}]}" \
    >"$dir/config.json"
  printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":[%s]}]\n' "$name" "$layers" >"$dir/manifest.json"
  # layer.tar is never in the archive: the engine has that layer already (see import_base).
  (cd "$dir" && tar -c config.json manifest.json ${extra:+extra.tar}) | dk load >/dev/null
  rm -rf "$dir"
  image_current "$name" || die "$name was not created from $BASE_IMAGE"
  log "created $name"
}

# The Vault image's key: the rootfs, the bao build (`bao version` names release and commit, in
# 0.2 s, where hashing the 180 MB binary takes 2 s on every `up`) and VAULT_RECIPE. Empty without
# a binary.
vault_key() {
  local version
  [[ -n "$BAO_BIN" && -x "$BAO_BIN" ]] || return 0
  version="$("$BAO_BIN" version 2>/dev/null | head -n1)" || die "$BAO_BIN version failed"
  [[ "$version" == OpenBao* ]] || die "$BAO_BIN is not OpenBao ('$version')"
  printf '%s\n' "$KEY" "$version" "vault-recipe=$VAULT_RECIPE" | sha256sum | cut -c1-16
}

vault_current() { # key
  local label
  image_current "$IMAGE_VAULT" || return 1
  label="$(dk image inspect --format '{{index .Config.Labels "prism.bao"}}' "$IMAGE_VAULT" 2>/dev/null)" || return 1
  [[ "$label" == "$1" ]]
}

# The Vault image: the rootfs plus /usr/local/bin/bao (`vault` links to it) and an entry point
# taking the official Vault image's arguments, so the command of templates/dev/components.yaml
# (`server -dev -dev-listen-address=...`) and VAULT_DEV_ROOT_TOKEN_ID (bao reads it when
# BAO_DEV_ROOT_TOKEN_ID is unset) work unchanged. It runs as nobody with HOME=/tmp, where dev
# mode writes the root token for the CLI (~/.vault-token).
build_vault_image() {
  local key="$1" work version t0=$SECONDS path='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  version="$("$BAO_BIN" version | head -n1 | awk '{print $2}')"
  work="$(mktemp -d "$CACHE/vault-XXXXXX")"
  mkdir -p "$work/root/usr/local/bin"
  cp "$BAO_BIN" "$work/root/usr/local/bin/bao"
  chmod 755 "$work/root/usr/local/bin/bao"
  ln -s bao "$work/root/usr/local/bin/vault"
  cat >"$work/root/usr/local/bin/prism-vault" <<'EOF'
#!/bin/sh
# prism-vault [arguments]: the official Vault image's convention. A first argument that is a
# program on PATH runs as given (sh, bao, ...); anything else is bao's arguments, so
# `server -dev -dev-listen-address=127.0.0.1:8200` runs `bao server -dev ...`.
set -e
if [ "$#" -gt 0 ] && command -v "$1" >/dev/null 2>&1; then exec "$@"; fi
exec bao "$@"
EOF
  chmod 755 "$work/root/usr/local/bin/prism-vault"
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$work/root" -cf "$work/bao.tar" \
    usr/local/bin/bao usr/local/bin/vault usr/local/bin/prism-vault
  derive_image "$IMAGE_VAULT" "[\"PATH=$path\",\"HOME=/tmp\"]" \
    '["server","-dev","-dev-listen-address=127.0.0.1:8200"]' nobody '["prism-vault"]' "$work/bao.tar" \
    ",\"prism.bao\":\"$key\",\"prism.openbao\":\"$version\""
  rm -rf "$work"
  vault_current "$key" || die "$IMAGE_VAULT was not labelled prism.bao=$key"
  log "$IMAGE_VAULT: OpenBao $version in $(( SECONDS - t0 ))s"
}

main() {
  mkdir -p "$CACHE"
  local todo=() img vkey vault_todo=0
  for img in "$IMAGE_REDIS" "$IMAGE_NATS" "$IMAGE_POSTGRES"; do
    image_current "$img" || todo+=("$img")
  done
  vkey="$(vault_key)"
  if [[ -z "$vkey" ]]; then
    log "not building $IMAGE_VAULT: no OpenBao binary at PRISM_BAO_BIN='$BAO_BIN' (\`scripts/test-services.sh up vault\` caches it)"
  elif ! vault_current "$vkey"; then
    vault_todo=1
  fi
  if (( ${#todo[@]} == 0 && vault_todo == 0 )); then
    log "images present: $IMAGE_REDIS $IMAGE_NATS $IMAGE_POSTGRES${vkey:+ $IMAGE_VAULT} (rootfs $KEY)"
    return 0
  fi
  if ! image_current "$BASE_IMAGE"; then
    # One builder at a time per cache dir.
    exec 8>"$CACHE/.lock"
    flock 8
    if [[ -f "$TARBALL" || -f "$SUMFILE" ]] && ! cache_ok; then
      log "cached rootfs $TARBALL is incomplete or corrupt (checksum missing or wrong); rebuilding it"
    fi
    if ! cache_ok; then build_rootfs; else log "using cached rootfs $TARBALL"; fi
    exec 8>&-
    import_base
  fi
  local path='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  for img in "${todo[@]}"; do
    case "$img" in
      "$IMAGE_REDIS")
        derive_image "$img" "[\"PATH=$path\"]" \
          '["redis-server","--bind","127.0.0.1","--port","6379","--save",""]' '' ;;
      "$IMAGE_NATS")
        derive_image "$img" "[\"PATH=$path\"]" \
          '["nats-server","-a","127.0.0.1","-p","4222","-js","-sd","/tmp/nats"]' '' ;;
      "$IMAGE_POSTGRES")
        derive_image "$img" "[\"PATH=/usr/lib/postgresql/15/bin:$path\",\"PGDATA=/var/lib/postgresql/data\"]" \
          '["prism-postgres"]' postgres ;;
    esac
  done
  if (( vault_todo )); then build_vault_image "$vkey"; fi
}

main "$@"
