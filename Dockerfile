# The prismctl image: one binary for the control plane (`admin serve`), the data plane
# (`proxy serve`), runners, and the CLI. Built from this checkout with any builder (the classic
# `docker build`, BuildKit, buildah, kaniko): no BuildKit-only syntax, no cache mounts.
#
#   docker build -t prismctl:dev .
#   docker build --build-arg BASE_IMAGE=prism-local/node:24 --network host -t prismctl:dev .
#
# BASE_IMAGE must provide Node 24 (node and npm on PATH, headers under /usr/local/include/node).
# Where no registry is reachable, scripts/images/build-node-base.sh makes one from Debian
# packages and the Node wheel (docs/production.md, "The image").
ARG BASE_IMAGE=node:24-bookworm-slim

# ---- build: dependencies (cached while package*.json do not change), then the sources ----
FROM ${BASE_IMAGE} AS build
WORKDIR /src
ENV npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
COPY package.json package-lock.json ./
# No install scripts: `prepare` would build before the sources are here, better-sqlite3 13 ships
# prebuilt binaries, and the others (esbuild, buf, ssh2, cpu-features) are checks or optional.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json tsconfig.sdk.json ./
COPY bin ./bin
COPY scripts ./scripts
COPY proto ./proto
COPY schema ./schema
COPY templates ./templates
COPY examples ./examples
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts \
  && find dist -name '*.map' -delete

# ---- runtime: the package as `npm pack` would ship it, plus its production node_modules ----
FROM ${BASE_IMAGE}
ARG PRISM_UID=10001
WORKDIR /opt/prismctl
COPY --from=build /src/package.json /src/oclif.manifest.json ./
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist ./dist
COPY --from=build /src/proto ./proto
COPY --from=build /src/schema ./schema
COPY --from=build /src/templates ./templates
COPY --from=build /src/examples ./examples
COPY --from=build /src/node_modules ./node_modules
# A home the non-root user owns: the prism home (admin.db, tokens, state) lives under it unless
# PRISM_HOME or --store say otherwise; mount a volume there to keep a SQLite store.
RUN ln -s /opt/prismctl/bin/run.js /usr/local/bin/prismctl \
  && mkdir -p /var/lib/prism \
  && chown "${PRISM_UID}:${PRISM_UID}" /var/lib/prism \
  && chmod 0700 /var/lib/prism
ENV HOME=/var/lib/prism NODE_ENV=production
USER ${PRISM_UID}:${PRISM_UID}
# gRPC (admin 8981, proxy 50090) and HTTP /healthz, /readyz, /metrics (admin 8982, proxy 50091).
EXPOSE 8981 8982 50090 50091
ENTRYPOINT ["prismctl"]
CMD ["--help"]
