ARG REGISTRY=docker.io
ARG BASE_IMAGE=library/python
ARG PY_VERSION=3.12
FROM ${REGISTRY}/${BASE_IMAGE}:${PY_VERSION}-slim AS runtime
ARG PY_VERSION
ARG APP_VERSION=0.0.0-dev
LABEL org.opencontainers.image.version=$APP_VERSION
COPY --link --chmod=0755 entrypoint.sh /usr/local/bin/entrypoint
COPY --parents --exclude=*.pyc src/**/*.py /app/
ADD --keep-git-dir=false https://example.org/repo.git#v1.2.3 /vendor/repo
RUN --network=none python -m compileall -q /app
RUN --mount=type=secret,id=pip_conf,target=/etc/pip.conf \
    pip install --no-cache-dir --requirement /app/requirements.lock
USER 10001
ENTRYPOINT ["entrypoint"]
