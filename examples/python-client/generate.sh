#!/usr/bin/env bash
# Generates the Python stubs from proto/ with grpcio-tools into gen/ (or the
# folder given). Usage: generate.sh [PYTHON] [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${1:-python3}"
out="${2:-$here/gen}"
mkdir -p "$out"
cd "$root/proto"
"$python" -m grpc_tools.protoc -I . --python_out="$out" --grpc_python_out="$out" \
  mesh/product/v1/options.proto mesh/product/v1/query.proto mesh/catalog/v1/catalog.proto \
  woori/customer/v1/customer.proto woori/payment/v1/payment.proto
echo "$out"
