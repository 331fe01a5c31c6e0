# raftnet's images, for machines with Docker (without it: images/build.sh makes the same two).
#
#   docker build --target node     -t raftnet/node:0.1.0 .
#   docker build --target operator -t raftnet/operator:0.1.0 .
#
# Both run as the non-root user 65532 on distroless (glibc, no shell, no package manager); the
# builder has the same Debian release, so the binaries find the glibc they were linked against.

FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
# protoc is vendored by the build; no system packages are needed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p raftnet-node -p raftnet-operator --bins \
 && mkdir -p /out \
 && cp target/release/raftnet-node target/release/raftnet target/release/raftnet-operator /out/ \
 && strip --strip-debug /out/*

FROM gcr.io/distroless/cc-debian12:nonroot AS node
COPY --from=build /out/raftnet-node /out/raftnet /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["raftnet-node"]

FROM gcr.io/distroless/cc-debian12:nonroot AS operator
COPY --from=build /out/raftnet-operator /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["raftnet-operator"]
