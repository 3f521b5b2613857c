"""Runs a join and aggregate with DuckDB over two Parquet files, prints the
seconds of the query on the first line, then the result as CSV.

    python duckdb_join.py customer.parquet payment.parquet 'SELECT ... FROM customer c JOIN payment p ...'
"""

import sys
import time

import duckdb

customer_file, payment_file, query = sys.argv[1], sys.argv[2], sys.argv[3]
connection = duckdb.connect()
connection.execute(f"CREATE VIEW customer AS SELECT * FROM read_parquet('{customer_file}')")
connection.execute(f"CREATE VIEW payment AS SELECT * FROM read_parquet('{payment_file}')")
started = time.perf_counter()
rows = connection.execute(query).fetchall()
print(time.perf_counter() - started)
for row in rows:
    print(",".join(str(value) for value in row))
