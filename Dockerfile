# Builds every mesh binary once (the dist profile: fat LTO, smaller binaries);
# compose.yaml runs each service from this image. The shipped product files
# and their contracts go to /mesh (the domains serve them with mesh-domain);
# the source file they load is mounted at /mesh/source.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --profile dist --locked --bins \
 && mkdir /out \
 && find target/dist -maxdepth 1 -type f -executable -exec cp {} /out/ \;

FROM debian:bookworm-slim
# Mount points exist owned by `mesh`, so named volumes mounted on them start so.
RUN useradd --system --home /data mesh \
 && mkdir -p /data /secrets /issuer /token /tokens/customer /tokens/payment /tokens/insight /key \
    /keys/registry /keys/customer /keys/payment /keys/insight /keys/postgres \
    /keys/pg-registry-1 /keys/pg-registry-2 /keys/pg-payment-1 /keys/pg-payment-2 \
 && mkdir -p /mesh/source \
 && chown -R mesh /data /secrets /issuer /token /tokens /key /keys /mesh/source
COPY --from=build /out/ /usr/local/bin/
COPY products/ /mesh/products/
COPY proto/woori/ /mesh/proto/woori/
USER mesh
WORKDIR /data
