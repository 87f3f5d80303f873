# ds24-proxy container image: a sidecar next to an app.
#
# Build:  docker build -t ds24-proxy .
# Run:    docker run --rm -e DS24_API_KEY_FILE=/run/secrets/ds24 \
#           -v ./ds24.key:/run/secrets/ds24:ro --network container:app ds24-proxy
#
# The build step below is the same command .ci/run runs
# (`cargo build --release --locked`), so CI exercises it without an engine.

# --- build stage: dependencies first, so they are cached between builds ---
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
RUN mkdir src benches && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && echo 'fn main() {}' > benches/actions.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
COPY config ./config
COPY benches ./benches
# Touch so cargo rebuilds the crate itself over the cached dependencies.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

# --- runtime stage: glibc, CA certificates, non-root, no shell ---
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/ds24-proxy /usr/local/bin/ds24-proxy
COPY --from=build /src/config/default.toml /etc/ds24-proxy/default.toml
# All settings come from the environment; the key from DS24_API_KEY or a
# mounted file (DS24_API_KEY_FILE), never from the image.
ENV DS24_PROXY_DATA_DIR=/var/lib/ds24-proxy \
    DS24_PROXY_LOG_FORMAT=json \
    RUST_LOG=info
VOLUME ["/var/lib/ds24-proxy"]
USER nonroot:nonroot
EXPOSE 7424
HEALTHCHECK --interval=10s --timeout=4s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/ds24-proxy", "health"]
ENTRYPOINT ["/usr/local/bin/ds24-proxy"]
CMD ["serve", "--config", "/etc/ds24-proxy/default.toml"]
