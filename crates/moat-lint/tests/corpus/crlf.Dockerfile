FROM alpine:3.20
RUN echo crlf \
  && echo done
USER 1000
CMD ["sh"]
