"""Reads a data product over the owning domain's Arrow Flight service into
a pyarrow table, then hands it to pandas, Polars or DuckDB.

    MESH_TOKEN=$(mesh token print --for payment) python read.py \
        --domain http://127.0.0.1:50052 --product payment.card_spending \
        --filter 'bas_yh = "2024Q2"' --select seq,tot_use_am --limit 10

The token is one for that domain alone (`mesh token print --for DOMAIN`
exchanges the sign-in token for it). The domain applies the caller's
agreement as it does for `mesh query`: columns it does not cover are left
out (named in the schema's `mesh.withheld_columns`), identifiers arrive as
the caller's pseudonyms. A whole product read by someone who may read all
of it can come in parts (one endpoint each), read here side by side. A
token is never sent in plaintext but to loopback.
"""

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import pyarrow
import pyarrow.csv
import pyarrow.flight as flight

from mesh_url import add_ca_argument, ca_pem, flight_uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", required=True, help="the domain's URL, e.g. http://127.0.0.1:50052")
    parser.add_argument("--product", required=True, help="e.g. payment.card_spending")
    parser.add_argument("--filter", default="", help="in the mesh's filter language")
    parser.add_argument("--select", default="", help="columns, comma separated")
    parser.add_argument("--order-by", default="")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--then", choices=["csv", "pandas", "polars", "duckdb"], default="csv",
                        help="what to do with the table: print it as CSV, or summarize it with a library")
    add_ca_argument(parser)
    args = parser.parse_args()
    token = os.environ.get("MESH_TOKEN", "").strip()
    if not token:
        sys.exit("set MESH_TOKEN to a token for the domain: `mesh token print --for DOMAIN`")

    ca = ca_pem(args.ca_file)
    client = flight.FlightClient(flight_uri(args.domain), **({"tls_root_certs": ca.encode()} if ca else {}))
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
    command = {"product": args.product, "filter": args.filter, "order_by": args.order_by, "limit": args.limit}
    if args.select:
        command["select"] = args.select.split(",")
    try:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(json.dumps(command)), options)
        # A whole product may come in parts, an endpoint each: read side by side, in order.
        with ThreadPoolExecutor(max_workers=max(1, len(info.endpoints))) as pool:
            parts = list(pool.map(lambda e: client.do_get(e.ticket, options).read_all(), info.endpoints))
        table = pyarrow.concat_tables(parts)
    except flight.FlightError as error:
        sys.exit(f"{args.product}: {error}")
    withheld = (table.schema.metadata or {}).get(b"mesh.withheld_columns")
    if withheld:
        print(f"note: your agreement does not cover {withheld.decode()} (left out)", file=sys.stderr)

    if args.then == "csv":
        pyarrow.csv.write_csv(table, sys.stdout.buffer)
    elif args.then == "pandas":
        print(table.to_pandas().describe().to_string())
    elif args.then == "polars":
        import polars

        print(polars.from_arrow(table).describe())
    else:
        import duckdb

        rows = table  # DuckDB reads Arrow tables by their Python name
        print(duckdb.sql("SELECT count(*) AS rows, count(DISTINCT seq) AS customers FROM rows"))


if __name__ == "__main__":
    main()
