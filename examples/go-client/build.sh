#!/usr/bin/env bash
# Builds the Go client offline with Debian's Go packages, in GOPATH mode:
# generates stubs from proto/ with protoc (import paths mapped with M
# options, the .proto files unchanged) and builds the binary.
# Usage: build.sh [OUTPUT_BINARY]   (default: examples/go-client/go-client)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here/go-client}"
work="${GO_CLIENT_WORK:-$root/target/go-client}"
gopath="$work/gopath"
rm -rf "$gopath/src/woorimesh"
mkdir -p "$gopath/src/woorimesh/goclient" "$work/cache"

declare -A package=(
  [mesh/product/v1/options.proto]=woorimesh/gen/mesh/product/v1
  [mesh/product/v1/query.proto]=woorimesh/gen/mesh/product/v1
  [mesh/catalog/v1/catalog.proto]=woorimesh/gen/mesh/catalog/v1
  [woori/customer/v1/customer.proto]=woorimesh/gen/woori/customer/v1
  [woori/payment/v1/payment.proto]=woorimesh/gen/woori/payment/v1
)
go_opts=()
grpc_opts=()
for file in "${!package[@]}"; do
  go_opts+=("--go_opt=M$file=${package[$file]}")
  grpc_opts+=("--go-grpc_opt=M$file=${package[$file]}")
done
protoc -I "$root/proto" -I /usr/include \
  --go_out="$gopath/src" "${go_opts[@]}" \
  --go-grpc_out="$gopath/src" "${grpc_opts[@]}" \
  "${!package[@]}"
cp "$here/main.go" "$gopath/src/woorimesh/goclient/main.go"
GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$gopath:/usr/share/gocode" GOCACHE="$work/cache" \
  go build -o "$out" woorimesh/goclient
echo "$out"
