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


def ca_pem(path: str) -> str:
    """The PEM of the CA certificate at `path`, or "" for the system's CAs. Exits naming the file when it is
    unreadable or holds no PEM certificate: a file named is never replaced by the system's CAs."""
    if not path:
        return ""
    try:
        with open(path, "rb") as file:
            pem = file.read().decode("ascii")
    except OSError as error:
        sys.exit(f"--ca-file {path}: {error.strerror}; give the PEM file of the mesh's CA")
    except UnicodeDecodeError:
        pem = ""
    if "-----BEGIN CERTIFICATE-----" not in pem:
        sys.exit(f"--ca-file {path}: no PEM certificate in it; give the PEM file of the mesh's CA, "
                 "e.g. .mesh/tls/ca.pem")
    return pem
