FROM alpine:3.19
RUN apk update && apk add curl bash
RUN apk add --no-cache --virtual .build-deps gcc=13.2.1_git20231014-r0 musl-dev=1.2.4_git20230717-r4 \
 && apk del .build-deps
RUN addgroup -S app && adduser -S app -G app
USER app
ENTRYPOINT /bin/sh -c "exec app"
