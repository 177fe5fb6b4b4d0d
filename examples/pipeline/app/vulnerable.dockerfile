# The workshop's vulnerable image, on a base the local pipeline test has (BASE: the language test image with
# old npm and PyPI packages). Runs as root, like the workshop's vulnerable.dockerfile.
ARG BASE=docker.io/library/node:14
FROM ${BASE}
COPY app.sh /app/app.sh
USER root
CMD ["/app/app.sh"]
