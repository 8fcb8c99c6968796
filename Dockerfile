# Build: the release binary. SQL is checked at compile time against the committed `.sqlx/`
# query metadata, so no database is needed here.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY openapi ./openapi
COPY .sqlx ./.sqlx
ENV SQLX_OFFLINE=true
RUN cargo build --release --locked && strip target/release/wa-gateway

# Run: a small Debian with CA certificates for the hosted API's TLS, as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/wa-gateway --create-home wagw
COPY --from=build /src/target/release/wa-gateway /usr/local/bin/wa-gateway
USER wagw
WORKDIR /var/lib/wa-gateway
ENV WAGW_LISTEN=0.0.0.0:8080 \
    WAGW_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=2s --retries=3 \
  CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]
ENTRYPOINT ["wa-gateway"]
CMD ["serve"]
