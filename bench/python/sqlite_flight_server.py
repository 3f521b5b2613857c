"""The baseline the mesh's Arrow Flight is measured against: pyarrow's own
Flight server over a SQLite file, streaming a table in record batches read
with Python's sqlite3 module. Prints its port, then serves until killed.

    python sqlite_flight_server.py FILE TABLE
"""

import sqlite3
import sys

import pyarrow as pa
import pyarrow.flight as flight

BATCH_ROWS = 8192


class SqliteFlight(flight.FlightServerBase):
    def __init__(self, path, table):
        super().__init__("grpc+tcp://127.0.0.1:0")
        self.path, self.table = path, table
        with sqlite3.connect(path) as db:
            columns = db.execute(f"SELECT name, type FROM pragma_table_info('{table}')").fetchall()
        self.names = [name for name, _ in columns]
        self.schema = pa.schema(
            [(name, pa.int64() if "INT" in kind.upper() else pa.float64() if "REAL" in kind.upper() else pa.string())
             for name, kind in columns]
        )

    def get_flight_info(self, context, descriptor):
        endpoint = flight.FlightEndpoint(b"all", [])
        return flight.FlightInfo(self.schema, descriptor, [endpoint], -1, -1)

    def do_get(self, context, ticket):
        def batches():
            db = sqlite3.connect(self.path)
            cursor = db.execute(f"SELECT {', '.join(self.names)} FROM {self.table}")
            while True:
                rows = cursor.fetchmany(BATCH_ROWS)
                if not rows:
                    break
                yield pa.RecordBatch.from_arrays(
                    [pa.array(column, type=field.type) for column, field in zip(zip(*rows), self.schema)],
                    schema=self.schema,
                )
            db.close()

        return flight.GeneratorStream(self.schema, batches())


server = SqliteFlight(sys.argv[1], sys.argv[2])
print(server.port, flush=True)
server.serve()
