#!/usr/bin/env python3
"""A real SMTP server for the campaign tests: aiosmtpd, storing each message it receives as a file.

    PYTHONPATH=<aiosmtpd install> python3 tests/smtp/sink.py --dir DIR [--host 127.0.0.1] [--port 0]

Prints `listening <port>` once it accepts connections. Each message becomes DIR/NNNNNN.eml (the
envelope recipients in an `X-Envelope-To` line, then the message as received), written under a
temporary name and renamed, so a file that exists is complete. Exits when its stdin closes, so a
test that dies takes it along. aiosmtpd is installed by scripts/smtp-sink.sh (as chdb is by
scripts/clickhouse.sh).
"""

import argparse
import asyncio
import os
import sys
import threading

from aiosmtpd.smtp import SMTP


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.count = len([n for n in os.listdir(directory) if n.endswith(".eml")])

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = os.path.join(self.directory, f"{self.count:06d}.eml")
        with open(name + ".tmp", "wb") as f:
            f.write(b"X-Envelope-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(envelope.original_content or envelope.content)
        os.replace(name + ".tmp", name)
        return "250 OK stored"


async def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    handler = Store(args.dir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="eventline-test-sink"), args.host, args.port
    )
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
