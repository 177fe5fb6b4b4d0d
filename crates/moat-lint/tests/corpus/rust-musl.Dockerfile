# syntax=docker/dockerfile:1
FROM rust:1.79-alpine AS chef
RUN apk add --no-cache musl-dev=1.2.5-r0 && cargo install cargo-chef --locked --version 0.1.66
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /app/recipe.json recipe.json
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo chef cook --release --target x86_64-unknown-linux-musl --recipe-path recipe.json
COPY . .
RUN cargo build --release --target x86_64-unknown-linux-musl --bin app

FROM scratch AS runtime
COPY --from=builder /app/target/x86_64-unknown-linux-musl/release/app /usr/local/bin/app
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/app"]
