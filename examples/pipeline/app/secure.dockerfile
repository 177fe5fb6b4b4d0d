# The workshop's secure image, on a base the local pipeline test has (BASE: the Debian image that
# scripts/deps.d builds). Non-root, no package caches, an explicit HEALTHCHECK decision.
ARG BASE=docker.io/library/debian:bookworm-slim
FROM ${BASE}
COPY --chown=1001:1001 app.sh /app/app.sh
USER 1001:1001
WORKDIR /app
HEALTHCHECK NONE
CMD ["/app/app.sh"]
