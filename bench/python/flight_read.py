"""Reads a whole product over Arrow Flight into a pyarrow table, as an
analyst would, and prints `rows seconds` (GetFlightInfo to the last batch).

    python flight_read.py grpc+tcp://127.0.0.1:50052 payment.card_spending [TOKEN]
"""

import sys
import time

import pyarrow.flight as flight

location, product = sys.argv[1], sys.argv[2]
headers = [(b"authorization", f"Bearer {sys.argv[3]}".encode())] if len(sys.argv) > 3 else []
options = flight.FlightCallOptions(headers=headers)
client = flight.FlightClient(location)
started = time.perf_counter()
info = client.get_flight_info(flight.FlightDescriptor.for_path(product), options)
rows = sum(client.do_get(endpoint.ticket, options).read_all().num_rows for endpoint in info.endpoints)
print(rows, time.perf_counter() - started, flush=True)
