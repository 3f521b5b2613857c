"""Top customers by card spend in one quarter and province, from the mesh.

Asks the catalog registry where customer.profiles and payment.card_spending
are served, calls both domains directly with stubs generated from proto/
(see generate.sh), and prints CSV: rank,seq,tot_use_am.

With --product it reads any product instead, one nobody generated stubs for
(a team's product published from a product file, say): its rows are decoded
with the descriptor set the registry holds and printed as CSV.

The registry is called with the sign-in token in MESH_TOKEN (`mesh token
print` prints one); each domain with a token for it alone, exchanged at the
registry's /v1/token (OAuth 2.0 Token Exchange, RFC 8693);
https:// services are verified against --ca-file (MESH_CA_FILE) or the
system's roots. A token is never sent in plaintext but to loopback.
"""

import argparse
import csv
import ipaddress
import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

import grpc

sys.path.insert(0, os.environ.get("MESH_PY_GEN", os.path.join(os.path.dirname(__file__), "gen")))

from google.protobuf import descriptor_pb2, descriptor_pool, field_mask_pb2, message_factory  # noqa: E402
from mesh.catalog.v1 import catalog_pb2, catalog_pb2_grpc  # noqa: E402
from mesh.product.v1 import query_pb2  # noqa: E402
from woori.customer.v1 import customer_pb2_grpc  # noqa: E402
from woori.payment.v1 import payment_pb2_grpc  # noqa: E402


TOKEN = os.environ.get("MESH_TOKEN", "").strip()
METADATA = [("authorization", f"Bearer {TOKEN}")] if TOKEN else []


def domain_metadata(registry, domain, ca_file):
    """Metadata carrying a token for `domain` alone, traded for the sign-in
    token at the registry (RFC 8693 token exchange, RFC 8707 resource)."""
    if not TOKEN:
        return []
    base = registry if registry.startswith(("http://", "https://")) else "http://" + registry
    form = urllib.parse.urlencode({
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": TOKEN,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "resource": f"urn:woori-mesh:domain:{domain}",
    }).encode()
    context = ssl.create_default_context(cafile=ca_file) if base.startswith("https://") else None
    request = urllib.request.Request(base.rstrip("/") + "/v1/token", data=form)
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            return [("authorization", "Bearer " + json.load(response)["access_token"])]
    except urllib.error.HTTPError as error:
        sys.exit(f"token exchange for {domain} refused: {error.read().decode(errors='replace')}")


def is_loopback(addr):
    host = addr.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def channel(target, ca_file, domain=None):
    """A channel to host:port or an http:// (plaintext) or https:// (TLS) URL.
    Under TLS the certificate must name `domain` when one is given (a domain's
    endpoint is whatever the catalog lists, so its certificate, not its
    address, says whose it is), or else the target's host."""
    if target.startswith("https://"):
        roots = open(ca_file, "rb").read() if ca_file else None
        options = [("grpc.ssl_target_name_override", domain)] if domain else []
        return grpc.secure_channel(target.removeprefix("https://"), grpc.ssl_channel_credentials(roots), options)
    addr = target.removeprefix("http://")
    if TOKEN and not is_loopback(addr):
        sys.exit(f"refusing to send the token in plaintext to {addr}: use an https:// URL")
    return grpc.insecure_channel(addr)


def endpoint(catalog, product):
    """The URL where the registry says `product` is served."""
    entry = catalog.GetProduct(catalog_pb2.GetProductRequest(name=product), timeout=30, metadata=METADATA)
    for e in entry.product.endpoints:
        if e.status == catalog_pb2.SERVING_STATUS_SERVING:
            return e.uri
    sys.exit(f"{product} has no serving endpoint in the catalog")


def read_any(catalog, registry, ca_file, product, request):
    """Prints every row of `product` that `request` selects as CSV, the row
    type read from the descriptor set the registry holds for it (no stubs)."""
    entry = catalog.GetProduct(
        catalog_pb2.GetProductRequest(name=product, view=catalog_pb2.PRODUCT_VIEW_FULL),
        timeout=30, metadata=METADATA)
    files = descriptor_pb2.FileDescriptorSet.FromString(entry.descriptor_set)
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:  # dependencies first
        pool.Add(file)
    service = pool.FindServiceByName(entry.product.service)
    response = service.FindMethodByName("Query").output_type
    def repeated(field):  # `label` is gone from newer protobuf releases
        return field.is_repeated if hasattr(field, "is_repeated") else field.label == field.LABEL_REPEATED
    rows = next((f for f in response.fields if f.message_type is not None and repeated(f)), None)
    if rows is None:
        sys.exit(f"{product}: its query response has no rows")
    response_class = message_factory.GetMessageClass(response)
    columns = [f.name for f in rows.message_type.fields]
    domain = entry.product.domain
    query = channel(endpoint(catalog, product), ca_file, domain).unary_stream(
        f"/{entry.product.service}/Query",
        request_serializer=query_pb2.QueryRequest.SerializeToString,
        response_deserializer=response_class.FromString)
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(columns)
    for batch in query(request, metadata=domain_metadata(registry, domain, ca_file)):
        for row in getattr(batch, rows.name):
            out.writerow([getattr(row, column) for column in columns])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", default="127.0.0.1:50050",
                        help="catalog registry: host:port (plaintext), or an http:// or https:// URL")
    parser.add_argument("--ca-file", default=os.environ.get("MESH_CA_FILE"),
                        help="PEM CA that https:// services' certificates chain to")
    parser.add_argument("--quarter", default="2024Q4")
    parser.add_argument("--province", default="서울")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--product", help="read this product instead, any product (e.g. merchant.shops), as CSV")
    parser.add_argument("--filter", default="", help="with --product: the rows to read, in the mesh's filter language")
    parser.add_argument("--limit", type=int, default=0, help="with --product: at most this many rows (0: all)")
    args = parser.parse_args()

    catalog = catalog_pb2_grpc.CatalogServiceStub(channel(args.registry, args.ca_file))
    if args.product:
        request = query_pb2.QueryRequest(filter=args.filter, limit=args.limit)
        read_any(catalog, args.registry, args.ca_file, args.product, request)
        return
    customers = customer_pb2_grpc.CustomerProfileServiceStub(
        channel(endpoint(catalog, "customer.profiles"), args.ca_file, "customer"))
    payments = payment_pb2_grpc.CardSpendingServiceStub(
        channel(endpoint(catalog, "payment.card_spending"), args.ca_file, "payment"))

    # The customers living in the province that quarter (customer domain).
    living = set()
    request = query_pb2.QueryRequest(
        filter=f'bas_yh = "{args.quarter}" AND hous_sido_nm = "{args.province}"',
        read_mask=field_mask_pb2.FieldMask(paths=["seq"]))
    for batch in customers.Query(request, metadata=domain_metadata(args.registry, "customer", args.ca_file)):
        living.update(row.seq for row in batch.rows)

    # Spending that quarter, highest first, until enough of them live there
    # (payment domain); cancelling the stream stops the domain's scan.
    request = query_pb2.QueryRequest(
        filter=f'bas_yh = "{args.quarter}"',
        read_mask=field_mask_pb2.FieldMask(paths=["seq", "tot_use_am"]),
        order_by="tot_use_am desc, seq")
    stream = payments.Query(request, metadata=domain_metadata(args.registry, "payment", args.ca_file))
    print("rank,seq,tot_use_am")
    rank = 0
    for batch in stream:
        for row in batch.rows:
            if row.seq in living and rank < args.top:
                rank += 1
                print(f"{rank},{row.seq},{row.tot_use_am}")
        if rank >= args.top:
            stream.cancel()
            break


if __name__ == "__main__":
    main()
