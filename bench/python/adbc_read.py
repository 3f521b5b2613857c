"""Runs one query through an ADBC driver into a pyarrow table, as an analyst
would, and prints `rows seconds` (connect to the last batch).

    python adbc_read.py flightsql grpc://127.0.0.1:50070 'SELECT * FROM "payment.card_spending"' TOKEN
    python adbc_read.py postgresql postgresql://user@127.0.0.1:5432/db 'SELECT * FROM payment.t'
"""

import sys
import time

driver, uri, query = sys.argv[1], sys.argv[2], sys.argv[3]
started = time.perf_counter()
if driver == "flightsql":
    import adbc_driver_flightsql
    import adbc_driver_flightsql.dbapi as dbapi

    header = adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value
    conn = dbapi.connect(uri, db_kwargs={header: f"Bearer {sys.argv[4]}"}, autocommit=True)
else:
    import adbc_driver_postgresql.dbapi as dbapi

    conn = dbapi.connect(uri, autocommit=True)
with conn:
    cursor = conn.cursor()
    cursor.execute(query)
    rows = cursor.fetch_arrow_table().num_rows
print(rows, time.perf_counter() - started, flush=True)
