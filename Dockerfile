# moat's own image: one binary for every part (server, worker, admission webhook, sensor).
#
# The binary is built by cargo where its dependency cache lives (CI: `cargo build --release --locked -p moat`),
# and this file packages it, the way release tools ship prebuilt binaries: a Debian stage collects exactly the
# C runtime the binary links against (found by ldd, not guessed), and the final stage is `scratch` holding only
# that binary, those libraries and a non-root user: no shell, no package manager, nothing to scan but moat.
# CA roots are compiled into the binary (webpki-roots), so no certificate bundle is needed.
#
#   cargo build --release --locked -p moat
#   buildah build -t moat:dev .          # or: docker build -t moat:dev .
#
# Health: every long-running role answers /healthz and /readyz over HTTP(S) and Kubernetes probes them
# (deploy/). An in-image HEALTHCHECK would need a shell or an HTTP client, which this image leaves out on
# purpose, so it says so with HEALTHCHECK NONE.
ARG BASE=docker.io/library/debian:bookworm-slim

FROM ${BASE} AS runtime-libs
ARG MOAT_BIN=target/release/moat
COPY ${MOAT_BIN} /out/usr/local/bin/moat
# Copy each shared object the binary needs (and the dynamic loader) to the same path under /out.
RUN set -eu; \
    chmod 0755 /out/usr/local/bin/moat; \
    for lib in $(ldd /out/usr/local/bin/moat | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do \
      mkdir -p "/out$(dirname "$lib")"; \
      cp -L "$lib" "/out$lib"; \
    done; \
    mkdir -p /out/etc /out/tmp /out/var/lib/moat; \
    echo 'moat:x:65532:65532:moat:/var/lib/moat:/sbin/nologin' > /out/etc/passwd; \
    echo 'moat:x:65532:' > /out/etc/group; \
    chmod 1777 /out/tmp; \
    chown 65532:65532 /out/var/lib/moat

FROM scratch
ARG VERSION=0.1.0
ARG SOURCE=https://example.invalid/moat
LABEL org.opencontainers.image.title="moat" \
      org.opencontainers.image.description="Container security: lint, scan, sign, admit, watch, and the security center" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=runtime-libs /out/ /
ENV HOME=/var/lib/moat
WORKDIR /var/lib/moat
USER 65532:65532
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/moat"]
CMD ["--help"]
