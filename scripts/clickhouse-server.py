#!/usr/bin/env python3
"""Serve the ClickHouse engine of the `chdb-core` wheel over the standard HTTP interface.

The local, zero-configuration ClickHouse for development and CI; in production the collector
talks to a real clickhouse-server instead. Needs `chdb-core==26.9.0` on PYTHONPATH (see
`scripts/clickhouse.sh install`). Prints one `ready ...` line once `/ping` answers and the server
there is this one; on SIGTERM/SIGINT stops the engine cleanly and exits 0; exits 1 if the engine
fails or does not answer within 30 s.
"""
import argparse
import os
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from xml.sax.saxutils import escape

READY_TIMEOUT_S = 30
STOP_TIMEOUT_S = 20

# The engine reads config.xml from the cwd: it is the only way to give it a host and port.
# chdb ships client-friendly defaults (async_insert=1, mutations_sync=1,
# date_time_input_format=best_effort); the default profile puts back those of a stock server,
# so what works here works against production too. listen_host limits who can connect.
CONFIG = """<clickhouse>
  <listen_host>{host}</listen_host>
  <http_port>{port}</http_port>
  <user_directories><users_xml><path>config.xml</path></users_xml></user_directories>
  <profiles><default>
    <async_insert>0</async_insert>
    <mutations_sync>0</mutations_sync>
    <date_time_input_format>basic</date_time_input_format>
  </default></profiles>
  <users><default>
    <password></password>
    <networks><ip>::/0</ip></networks>
    <profile>default</profile>
    <quota>default</quota>
  </default></users>
  <quotas><default></default></quotas>
</clickhouse>
"""


def fail(message):
    print(f"clickhouse-server: {message}", file=sys.stderr, flush=True)
    os._exit(1)  # the engine thread can be neither interrupted nor joined: do not wait for it


class Http:
    def __init__(self, host, port):
        self.base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def query(self, sql, timeout=2.0):
        url = self.base + "/?" + urllib.parse.urlencode({"query": sql})
        with urllib.request.urlopen(urllib.request.Request(url, data=b""), timeout=timeout) as r:
            return r.read().decode().strip()

    def pings(self):
        try:
            with urllib.request.urlopen(self.base + "/ping", timeout=2.0) as r:
                return r.read().decode().strip() == "Ok."
        except OSError:
            return False

    def runs(self, marker):
        # The query's own text contains the marker too: leave it out by its id.
        sql = f"SELECT count() FROM system.processes WHERE query LIKE '%{marker}%' AND query_id != queryID()"
        try:
            return self.query(sql) == "1"
        except OSError:
            return False


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--http-port", type=int, default=18123)
    p.add_argument("--data-dir", required=True, help="where databases and tables persist")
    p.add_argument("--run-dir", required=True, help="scratch dir for config.xml; becomes the cwd")
    args = p.parse_args()
    started = time.monotonic()
    http = Http(args.host, args.http_port)
    if http.pings():
        fail(f"{http.base} already answers: another server uses port {args.http_port}")

    data_dir = os.path.abspath(args.data_dir)
    os.makedirs(data_dir, exist_ok=True)
    os.makedirs(args.run_dir, exist_ok=True)
    os.chdir(args.run_dir)
    with open("config.xml", "w") as f:
        f.write(CONFIG.format(host=escape(args.host), port=args.http_port))

    # SIGTERM/SIGINT must stop the engine cleanly, not kill it mid-write. A Python signal handler
    # is not reliable here: the engine replaces the SIGINT handler now and then (1 Ctrl-C in 7 was
    # lost). So block both signals in every thread (threads inherit the mask, so do it before the
    # engine starts any) and take them synchronously in a thread of our own.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    stopping = threading.Event()
    threading.Thread(target=lambda: (signal.sigwait(stop_signals), stopping.set()), daemon=True).start()
    try:
        from chdb import _chdb
    except ImportError as e:
        fail(f"cannot import chdb ({e}); run `scripts/clickhouse.sh install`")
    _chdb.set_signal_handlers_enabled(0)

    # The listener lives only while this one call runs, so the batch ends with a statement that
    # never finishes, found by its marker when we stop. `sum`: a count() is answered without
    # reading rows. The format becomes the HTTP default output format, TabSeparated as on a real
    # server. The engine prints its own errors to stderr and returns normally: nothing to catch.
    marker = f"eventline_keepalive_{uuid.uuid4().hex}"
    batch = (
        "SYSTEM START LISTEN HTTP; "
        f"SELECT sum(sleepEachRow(0.1)) AS {marker} FROM numbers(1000000000000) SETTINGS max_block_size = 1"
    )
    engine = threading.Thread(
        target=_chdb.query, args=(batch, "TabSeparated"), kwargs={"path": data_dir}, daemon=True
    )
    engine.start()

    # Another server can take the port after the check above, even one on this data dir (the
    # engine locks the data dir only after it listens): only ours runs the marked statement.
    while not (http.pings() and http.runs(marker)):
        if not engine.is_alive():
            fail("engine stopped before answering (its error is above)")
        if time.monotonic() - started > READY_TIMEOUT_S:
            fail(f"{http.base}/ping did not answer within {READY_TIMEOUT_S} s")
        if stopping.wait(0.05):
            fail("interrupted before ready")
    print(f"ready {http.base} in {time.monotonic() - started:.2f}s (data {data_dir}, pid {os.getpid()})", flush=True)

    while not stopping.wait(0.5):
        if not engine.is_alive():
            fail("engine stopped unexpectedly (its error is above)")

    try:
        http.query(f"KILL QUERY WHERE query LIKE '%{marker}%' SYNC", timeout=STOP_TIMEOUT_S)
    except OSError as e:
        fail(f"stop request failed: {e}")
    engine.join(STOP_TIMEOUT_S)
    if engine.is_alive():
        fail(f"engine did not stop within {STOP_TIMEOUT_S} s")
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
