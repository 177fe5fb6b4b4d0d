FROM busybox:1.36

RUN echo one \

    && echo two \
# a comment in the middle of a continued line
    && echo three

LABEL org.opencontainers.image.source="https://example.org/repo" \
      org.opencontainers.image.licenses="Apache-2.0" \
      maintainer="team@example.org"
ENV A=1 B="two words" C='single'
USER 1000:1000
CMD ["sh"]
