# The prismctl image: one binary for the control plane (`admin serve`), the data plane
# (`proxy serve`), runners, and the CLI. Built from this checkout with any builder (the classic
# `docker build`, BuildKit, buildah, kaniko): no BuildKit-only syntax, no cache mounts.
#
#   docker build -t prismctl:dev .
#   docker build --build-arg BASE_IMAGE=prism-local/node:24 --network host -t prismctl:dev .
#
# BASE_IMAGE must provide Node 24 (node and npm on PATH). Where no registry is reachable,
# scripts/images/build-node-base.sh makes one from Debian packages and the Node wheel
# (docs/production.md, "The image"). Few instructions on purpose: the classic builder commits
# every one, and on a copying storage driver (vfs) each commit copies the whole file system.
ARG BASE_IMAGE=node:24-bookworm-slim

# ---- build: dependencies (a layer cached while package*.json do not change), then the sources ----
FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: `prepare` would build before the sources are here, better-sqlite3 13 ships
# prebuilt binaries, and the others (esbuild, buf, ssh2, cpu-features) are checks or optional.
RUN npm ci --ignore-scripts --no-audit --no-fund --no-update-notifier
# The sources (.dockerignore keeps the context to what the build reads).
COPY . .
# Build, drop the dev dependencies, and lay out what `npm pack` would ship in /opt/prismctl.
RUN npm run build \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --no-update-notifier \
  && find dist -name '*.map' -delete \
  && mkdir -p /opt/prismctl \
  && mv package.json oclif.manifest.json bin dist proto schema templates examples node_modules /opt/prismctl/

# ---- runtime ----
FROM ${BASE_IMAGE}
ARG PRISM_UID=10001
COPY --from=build /opt/prismctl /opt/prismctl
# HOME is the one directory the non-root user owns: the prism home (admin.db, tokens, state) lives
# under it unless PRISM_HOME or --store say otherwise; mount a volume there to keep a SQLite store.
RUN ln -s /opt/prismctl/bin/run.js /usr/local/bin/prismctl \
  && mkdir -p /var/lib/prism \
  && chown "${PRISM_UID}:${PRISM_UID}" /var/lib/prism \
  && chmod 0700 /var/lib/prism
ENV HOME=/var/lib/prism
USER ${PRISM_UID}:${PRISM_UID}
# Ports are the servers' flags (--listen, --metrics-listen): by default gRPC 8981 (admin) and 50090
# (proxy), HTTP /healthz, /readyz, /metrics 8982 and 50091; no EXPOSE/WORKDIR/CMD, each of which
# the classic builder would commit as one more copy of the file system. Without arguments,
# prismctl prints its help.
ENTRYPOINT ["prismctl"]
