"""The gRPC URI of a mesh service's URL for Arrow clients (pyarrow.flight,
ADBC): http:// -> grpc+tcp://, https:// -> grpc+tls://. A token is never
sent in plaintext but to loopback: any other http:// URL is refused. The CA
a mesh's certificates are signed by (`mesh up --tls`) is given with
--ca-file or MESH_CA_FILE, as to the `mesh` CLI."""

import argparse
import ipaddress
import os
import sys
import urllib.parse


def flight_uri(url: str) -> str:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "https":
        return f"grpc+tls://{parsed.netloc}"
    host = parsed.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        sys.exit(f"refusing to send the token in plaintext to {parsed.netloc}: use an https:// URL")
    return f"grpc+tcp://{parsed.netloc}"


def add_ca_argument(parser: argparse.ArgumentParser) -> None:
    """--ca-file: the PEM file of the CA to trust (default: MESH_CA_FILE, else the system's)."""
    parser.add_argument("--ca-file", default=os.environ.get("MESH_CA_FILE", ""),
                        help="PEM of the CA that signed the services' certificates, e.g. .mesh/tls/ca.pem of `mesh up --tls` "
                             "(default: $MESH_CA_FILE, else the system's CAs)")


def ca_pem(path: str) -> bytes:
    """The CA certificate at `path`, or nothing for the system's CAs; exits naming the file when unreadable."""
    if not path:
        return b""
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        sys.exit(f"--ca-file {path}: {error.strerror}; give the PEM file of the mesh's CA")
