# Builds every mesh binary once; compose.yaml runs each service from this image.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
 && mkdir /out \
 && find target/release -maxdepth 1 -type f -executable -exec cp {} /out/ \;

FROM debian:bookworm-slim
RUN useradd --system --home /data mesh && mkdir -p /data /secrets && chown mesh /data /secrets
COPY --from=build /out/ /usr/local/bin/
USER mesh
WORKDIR /data
