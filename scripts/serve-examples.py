#!/usr/bin/env python3
"""Serves the examples the way a customer's own web server would (standard library only).

    python3 scripts/serve-examples.py [--port 8081] [--host 127.0.0.1]
        [--collector http://127.0.0.1:8080] [--partner-file .data/demo-partner.json]

Routes:
  /               redirect to /shop/
  /shop/...       examples/shop/         (the "Online Store" demo)
  /eventline/...  npm/dist/              (the embeddable tracker: eventline.js + wasm/)
  /config.js      window.EVENTLINE_CONFIG = {collectorUrl, partnerId}, read from --partner-file
                  on every request, so a partner re-created by `make run` is picked up at once.

Open the pages as http://localhost:PORT, not 127.0.0.1: the demo Online Store source admits the
`localhost` domain only, and the collector checks the browser's Origin against it.
Nothing secret is served: the partner file also holds the API key, which stays on the server.
"""

import argparse
import json
import os
import posixpath
import sys
import urllib.parse
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# URL prefix -> directory. Longest prefix first.
MOUNTS = [
    ("/eventline/", os.path.join(ROOT, "npm", "dist")),
    ("/shop/", os.path.join(ROOT, "examples", "shop")),
]

# Python's table misses .wasm on some versions; WebAssembly.instantiateStreaming needs this type.
TYPES = {
    ".wasm": "application/wasm",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".ts": "text/plain; charset=utf-8",
    ".map": "application/json",
}


def resolve(url_path):
    """Maps a URL path to (file, redirect): a file under one of the mounts, or a redirect to the
    same path with a trailing slash for a directory; (None, None) if nothing (or a `..` escape)."""
    path = posixpath.normpath(urllib.parse.unquote(url_path))
    for prefix, directory in MOUNTS:
        if not (path + "/").startswith(prefix):
            continue
        base = os.path.realpath(directory)
        full = os.path.realpath(os.path.join(base, path[len(prefix):]))
        if full != base and not full.startswith(base + os.sep):
            return None, None
        if os.path.isdir(full):
            if not url_path.endswith("/"):
                return None, url_path + "/"
            full = os.path.join(full, "index.html")
        return (full if os.path.isfile(full) else None), None
    return None, None


class Handler(SimpleHTTPRequestHandler):
    server_version = "eventline-examples/1"
    config = None  # set in main()

    def do_GET(self):
        self.respond(head=False)

    def do_HEAD(self):
        self.respond(head=True)

    def respond(self, head):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/":
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", "/shop/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if url.path == "/config.js":
            body, ctype = self.config_js()
        elif url.path == "/healthz":
            body, ctype = b"ok\n", "text/plain; charset=utf-8"
        else:
            file, redirect = resolve(url.path)
            if redirect:
                self.send_response(HTTPStatus.MOVED_PERMANENTLY)
                self.send_header("Location", redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if file is None:
                hint = " (build the tracker: scripts/build-tracker.sh)" if url.path.startswith("/eventline/") else ""
                self.send_error(HTTPStatus.NOT_FOUND, "not found" + hint)
                return
            with open(file, "rb") as f:
                body = f.read()
            ctype = TYPES.get(os.path.splitext(file)[1], "application/octet-stream")
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        # Demo pages change while one works on them; never let the browser serve a stale tracker.
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def config_js(self):
        collector, partner_file = self.config
        try:
            with open(partner_file, encoding="utf-8") as f:
                partner_id = json.load(f)["id"]
        except (OSError, ValueError, KeyError) as e:
            message = f"Eventline demo: cannot read the partner from {partner_file} ({e}); run `make run` first."
            js = f"console.error({json.dumps(message)});\nwindow.EVENTLINE_CONFIG = null;\n"
            return js.encode(), TYPES[".js"]
        config = {"collectorUrl": collector, "partnerId": partner_id}
        js = ("// Generated by scripts/serve-examples.py from the demo partner file.\n"
              f"window.EVENTLINE_CONFIG = {json.dumps(config)};\n")
        return js.encode(), TYPES[".js"]

    def log_message(self, fmt, *args):
        if self.server.quiet:
            return
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("EXAMPLES_PORT", "8081")))
    parser.add_argument("--host", default=os.environ.get("EXAMPLES_HOST", "127.0.0.1"))
    parser.add_argument("--collector", default=os.environ.get("EVENTLINE_COLLECTOR_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--partner-file", default=os.environ.get(
        "EVENTLINE_PARTNER_FILE", os.path.join(ROOT, ".data", "demo-partner.json")))
    parser.add_argument("--quiet", action="store_true", help="no request log")
    args = parser.parse_args()

    Handler.config = (args.collector.rstrip("/"), args.partner_file)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.quiet = args.quiet
    print(f"examples on http://localhost:{args.port}/shop/ (collector {args.collector})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
