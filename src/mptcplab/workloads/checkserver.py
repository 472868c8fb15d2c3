"""The offline "am I using MPTCP" service: a tiny HTTP server whose answer comes from the
accepted socket itself (TCP_IS_MPTCP), like the public check services, so an unmodified
client (curl, plain or under mptcpize) can ask it.

Run standalone inside a namespace: `python -m mptcplab.workloads.checkserver --port 80`.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import threading

from mptcplab.kernel import netns

TCP_IS_MPTCP = 43
USING = "You are using MPTCP.\n"
NOT_USING = "You are not using MPTCP.\n"


def is_mptcp(conn: socket.socket) -> bool:
    """True when this accepted connection really runs MPTCP (not a TCP fallback)."""
    try:
        return conn.getsockopt(socket.IPPROTO_TCP, TCP_IS_MPTCP) == 1
    except OSError:
        return False


def _answer(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(5)
        data = b""
        try:
            while b"\r\n\r\n" not in data and len(data) < 16384:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            return
        body = (USING if is_mptcp(conn) else NOT_USING).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        with contextlib.suppress(OSError):
            conn.sendall(head.encode() + body)


class CheckServer:
    """Serve the check on PORT in namespace NS (all addresses, IPv4 and IPv6) from a thread."""

    def __init__(self, ns: str | None, port: int = 80, bind: str = "::") -> None:
        with netns.enter(ns):
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_MPTCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.sock.bind((bind, port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=_answer, args=(conn,), daemon=True).start()

    def __enter__(self) -> CheckServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--bind", default="::", help="address to listen on (default: all)")
    args = parser.parse_args()
    server = CheckServer(None, args.port, args.bind)
    print(f"listening on [{args.bind}]:{server.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve()


if __name__ == "__main__":
    main()
