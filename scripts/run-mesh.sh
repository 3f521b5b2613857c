#!/usr/bin/env bash
# Runs the whole mesh locally: the catalog registry (50050) and the customer
# (50051), payment (50052) and insight (50053) domains, each with its own
# SQLite file under .mesh/. The source domains generate the default synthetic
# data on first start (100,000 customers x 4 quarters). Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --bins
bin=target/release
pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill -TERM "${pids[@]}" 2>/dev/null || true
  wait
}
trap stop INT TERM EXIT
"$bin/catalog-registry" & pids+=($!)
"$bin/customer" & pids+=($!)
"$bin/payment" & pids+=($!)
"$bin/insight" & pids+=($!)
cat >&2 <<'MSG'
mesh starting: registry 127.0.0.1:50050, customer :50051, payment :50052, insight :50053
try (grpcurl: bash scripts/install-tools.sh; PATH=$PWD/.tools/bin:$PATH):
  grpcurl -plaintext -d '{"page_size":10}' 127.0.0.1:50050 mesh.catalog.v1.CatalogService/ListProducts
  grpcurl -plaintext -d '{"filter":"tot_use_am > 50000000","limit":5}' 127.0.0.1:50052 woori.payment.v1.CardSpendingService/Query
  grpcurl -plaintext -d '{"filter":"hous_sido_nm = \"서울\"","limit":5}' 127.0.0.1:50053 woori.insight.v1.SegmentSpendingService/Query
Ctrl-C stops everything.
MSG
wait -n
