# syntax=docker/dockerfile:1.7
FROM alpine:3.20 AS build
RUN <<EOF
set -eu
apk add --no-cache build-base=0.5-r3
echo "building"
EOF
RUN --mount=type=cache,target=/root/.cache \
    --mount=type=bind,source=src,target=/src <<-SCRIPT
	cd /src
	make -j2 all
	SCRIPT
COPY <<EOF /etc/app.conf
listen = 0.0.0.0:8080
# not a Dockerfile comment, part of the file
EOF
RUN <<EOT python3
print("hello from python")
EOT
RUN cat <<EOF > /usr/local/bin/start && chmod 0755 /usr/local/bin/start
#!/bin/sh
exec /app "$@"
EOF

FROM alpine:3.20
COPY --from=build /usr/local/bin/start /usr/local/bin/start
USER 10001:10001
HEALTHCHECK --interval=30s CMD ["/usr/local/bin/start", "--check"]
ENTRYPOINT ["/usr/local/bin/start"]
