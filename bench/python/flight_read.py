"""Reads a whole product over Arrow Flight into a pyarrow table, as an
analyst would, and prints `rows seconds` (GetFlightInfo to the last batch).
The endpoints (the parts the server split the read into) are read side by
side, as Flight clients read partitions.

    python flight_read.py grpc+tcp://127.0.0.1:50052 payment.card_spending [TOKEN]
"""

import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.flight as flight

location, product = sys.argv[1], sys.argv[2]
headers = [(b"authorization", f"Bearer {sys.argv[3]}".encode())] if len(sys.argv) > 3 else []
options = flight.FlightCallOptions(headers=headers)
client = flight.FlightClient(location)
started = time.perf_counter()
info = client.get_flight_info(flight.FlightDescriptor.for_path(product), options)
with ThreadPoolExecutor(max_workers=max(1, len(info.endpoints))) as pool:
    parts = list(pool.map(lambda e: client.do_get(e.ticket, options).read_all(), info.endpoints))
table = pa.concat_tables(parts)
print(table.num_rows, time.perf_counter() - started, flush=True)
