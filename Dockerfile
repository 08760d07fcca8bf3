# Tessera in a container: built from source in a Rust image, run from a distroless one (glibc,
# CA certificates, no shell) as a non-root user. The build stage runs the README's build steps
# ("Building from source"); a test (src/tidy.rs) keeps the two the same.
#
#   docker build -t tessera:local .
#   docker run --rm -p 8080:8080 -e TESSERA_MASTER_KEY="$(head -c 32 /dev/urandom | base64)" tessera:local
#
# See docs/deployment.md (and deploy/compose/ for PostgreSQL with two nodes behind a balancer).

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin tessera
# The data directory, owned by the runtime image's non-root user (65532).
RUN install -d -m 0700 -o 65532 -g 65532 /out/var/lib/tessera

FROM ${RUNTIME_IMAGE}
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
COPY --from=build --chown=65532:65532 /out/var/lib/tessera /var/lib/tessera
USER 65532:65532
WORKDIR /var/lib/tessera
ENV TESSERA_LISTEN=0.0.0.0:8080 \
    TESSERA_DATA_DIR=/var/lib/tessera \
    TESSERA_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/var/lib/tessera"]
ENTRYPOINT ["/usr/local/bin/tessera"]
CMD ["serve"]
