#!/usr/bin/env python3
"""A real HTTP webhook receiver for the campaign tests (a partner's endpoint, or an SMS/push
gateway), recording every request it gets as a file. Standard library only.

    python3 tests/webhook/receiver.py --dir DIR [--host 127.0.0.1] [--port 0] [--fail-first N]
                                      [--tls-cert CERT.pem --tls-key KEY.pem]

Prints `listening <port>` once it accepts connections. Each POST becomes DIR/NNNNNN.json:
{"path", "headers": {name: value}, "body": "<the raw body, UTF-8>", "status": <the answer>},
written under a temporary name and renamed, so a file that exists is complete. The first N
requests (--fail-first) are answered 503 (and recorded), the rest 200. With --tls-cert and
--tls-key it speaks HTTPS with that certificate chain and key (PEM). Exits when its stdin
closes, so a test that dies takes it along.
"""

import argparse
import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail-first", type=int, default=0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    lock = threading.Lock()
    state = {"count": len([n for n in os.listdir(args.dir) if n.endswith(".json")])}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                state["count"] += 1
                n = state["count"]
                status = 503 if n <= args.fail_first else 200
                name = os.path.join(args.dir, f"{n:06d}.json")
                record = {
                    "path": self.path,
                    "headers": {k: v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                    "status": status,
                }
                with open(name + ".tmp", "w") as f:
                    json.dump(record, f)
                os.replace(name + ".tmp", name)
            answer = b"busy, try later" if status == 503 else b"ok"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"listening {server.server_address[1]}", flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
