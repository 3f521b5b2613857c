"""Runs SQL over the mesh's data products through `mesh sql serve` with the
ADBC Flight SQL driver, then hands the result to pandas, Polars or DuckDB.

    mesh sql serve &          # Flight SQL on 127.0.0.1:50070
    MESH_TOKEN=$(mesh token print) python sql.py \
        'SELECT c.life_stage, count(*) AS customers
         FROM "customer.profiles" c JOIN "payment.card_spending" p USING (bas_yh, seq)
         GROUP BY 1 ORDER BY 2 DESC' --then polars

The token is your sign-in token (`mesh token print`); the service reads each
product from its owning domain with it, exchanged for that domain, so each
owner applies your agreement: columns it does not cover are not there, and
customer numbers arrive as your pseudonyms (the same in every product, so
joins on them work). A token is never sent in plaintext but to loopback.
"""

import argparse
import os
import sys

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flightsql
import adbc_driver_manager
import pyarrow.csv

from mesh_url import add_ca_argument, ca_pem, flight_uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("query", help='one SELECT; product ids are quoted table names: "payment.card_spending"')
    parser.add_argument("--sql", default="http://127.0.0.1:50070", help="the `mesh sql serve` URL")
    parser.add_argument("--then", choices=["csv", "pandas", "polars", "duckdb"], default="csv",
                        help="what to do with the result: print it as CSV, or summarize it with a library")
    add_ca_argument(parser)
    args = parser.parse_args()
    token = os.environ.get("MESH_TOKEN", "").strip()
    if not token:
        sys.exit("set MESH_TOKEN to your sign-in token: `mesh token print`")

    options = adbc_driver_flightsql.DatabaseOptions
    db_kwargs = {options.AUTHORIZATION_HEADER.value: f"Bearer {token}"}
    ca = ca_pem(args.ca_file)
    if ca:
        db_kwargs[options.TLS_ROOT_CERTS.value] = ca
    try:
        with flightsql.connect(flight_uri(args.sql), db_kwargs=db_kwargs, autocommit=True) as conn:
            with conn.cursor() as cursor:
                cursor.execute(args.query)
                table = cursor.fetch_arrow_table()
    except adbc_driver_manager.Error as error:
        sys.exit(f"{error}")

    if args.then == "csv":
        pyarrow.csv.write_csv(table, sys.stdout.buffer)
    elif args.then == "pandas":
        print(table.to_pandas().describe(include="all").to_string())
    elif args.then == "polars":
        import polars

        print(polars.from_arrow(table))
    else:
        import duckdb

        result = table  # DuckDB reads Arrow tables by their Python name
        print(duckdb.sql("SELECT count(*) AS rows FROM result").fetchone()[0])


if __name__ == "__main__":
    main()
