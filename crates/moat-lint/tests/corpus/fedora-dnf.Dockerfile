FROM registry.fedoraproject.org/fedora:40
ARG PG_VERSION=16.2-1.fc40
RUN dnf -y install postgresql-server-${PG_VERSION} tar-1.35 && dnf clean all
RUN microdnf install -y nginx && rm -rf /var/cache/yum/*
RUN zypper --non-interactive install curl && zypper clean
USER 26
