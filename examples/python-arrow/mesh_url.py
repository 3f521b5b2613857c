"""The gRPC URI of a mesh service's URL for Arrow clients (pyarrow.flight,
ADBC): http:// -> grpc+tcp://, https:// -> grpc+tls://. A token is never
sent in plaintext but to loopback: any other http:// URL is refused."""

import ipaddress
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
