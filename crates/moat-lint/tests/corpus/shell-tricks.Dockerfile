FROM ubuntu:24.04
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN if [ "$(uname -m)" = "x86_64" ]; then \
        echo amd64 > /arch; \
    elif [ "$(uname -m)" = "aarch64" ]; then echo arm64 > /arch; \
    else echo other > /arch; fi \
 && for f in /etc/*.conf; do test -r "$f" && echo "$f"; done \
 && { echo grouped; echo braces; } > /tmp/g \
 && ( cd /tmp && ls ) \
 && echo 'single $quoted "double"' "double 'single' $HOME" \
 && x=$((1 + 2)) && echo "$x" `date` \
 && true || false
RUN echo "a|b" | tr '|' ' ' 2>&1 | tee /tmp/out >/dev/null
RUN ["/bin/bash", "-c", "echo exec | cat"]
USER 1000
