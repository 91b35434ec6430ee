#!/usr/bin/env python3
"""The sink's duplicate look-up, measured in ClickHouse (scripts/bench-lookup.sh runs it).

Fills a migrated database with N events of one partner spread over the last 23 days (UUID v7 ids
of their time, through every view, as `make bench --prefill` does), then runs each look-up case
`--runs` times with the collector's query in `event_keys` and, for comparison, the query it made
in `events` before migration 0017. Prints the median ClickHouse time (`elapsed_ns`) and the rows
read (`read_rows`), both from the `X-ClickHouse-Summary` header. Parameters travel as multipart
form fields, as the collector's client sends them.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid

PARTNER = "0193a8e0-0000-7000-8000-000000000001"
NAMES = "['product_viewed','added_to_cart','purchase_completed']"
BEFORE = (
    "SELECT DISTINCT partner_id, name, customer_id, event_id FROM events "
    "WHERE partner_id IN {partners:Array(UUID)} AND name IN {names:Array(String)} "
    "AND event_id IN {ids:Array(UUID)} AND event_time >= {since:DateTime64(3)}"
)
NOW = (
    "SELECT DISTINCT partner_id, name, customer_id, event_id FROM event_keys "
    "WHERE partner_id = {partner:UUID} AND event_id IN {ids:Array(String)} "
    "AND event_time >= {since:DateTime64(3)}"
)


def uuid7() -> str:
    """A UUID v7 of now, as the tracker makes them."""
    ms = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64) | (0b10 << 62)
    return str(uuid.UUID(int=value | (rand & ((1 << 62) - 1))))


class ClickHouse:
    def __init__(self, url: str, database: str):
        self.url = f"{url.rstrip('/')}/?database={database}"
        self.dir = tempfile.mkdtemp(prefix="bench-lookup-")

    def text(self, sql: str) -> str:
        return subprocess.run(
            ["curl", "-sSf", self.url, "--data-binary", sql],
            check=True, capture_output=True, text=True,
        ).stdout

    def measure(self, sql: str, params: dict) -> tuple:
        """(rows read, ms) of one run of `sql`."""
        args = ["curl", "-sSf", "-D", "-", "-o", "/dev/null", self.url, "-F", f"query={sql}"]
        for name, value in params.items():
            path = os.path.join(self.dir, name)
            with open(path, "w") as f:
                f.write(value)
            args += ["-F", f"param_{name}=<{path}"]
        headers = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        summary = [h for h in headers.splitlines() if h.lower().startswith("x-clickhouse-summary")]
        data = json.loads(summary[-1].split(":", 1)[1])
        return int(data["read_rows"]), int(data["elapsed_ns"]) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--events", type=int, default=3_000_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ch = ClickHouse(args.url, args.database)

    started = time.time()
    ch.text(
        "INSERT INTO events (partner_id, event_id, kind, name, source, source_id, customer_id, "
        "anonymous_id, occurred_at, sent_at, received_at, event_time, context_strings) "
        f"SELECT toUUID('{PARTNER}'), dateTimeToUUIDv7(toDateTime(t)), 'customer', "
        f"{NAMES}[number % 3 + 1], 'online_store', generateUUIDv4(), "
        "concat('earlier-', toString(number % 500000)), "
        "concat('earlier-anon-', toString(number % 700000)), t, t, t, t, map('category', 'Hat') "
        f"FROM (SELECT number, now64(3) - toIntervalMillisecond(number * 2000000000 / {args.events}) "
        f"AS t FROM numbers({args.events}))"
    )
    print(f"{args.events} events of one partner over 23 days stored in {time.time() - started:.1f} s; "
          f"median of {args.runs} runs, load average at the start {os.getloadavg()[0]:.1f}\n")
    one_hour = ch.text(
        "SELECT toString(event_id) FROM events ORDER BY event_time DESC LIMIT 2000 OFFSET 100000"
    ).split()
    at_random = ch.text(
        "SELECT toString(event_id) FROM events ORDER BY cityHash64(event_id) LIMIT 2000"
    ).split()
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - 32 * 86400))
    cases = [
        ("1 new id", lambda: [uuid7()]),
        ("20 new ids", lambda: [uuid7() for _ in range(20)]),
        ("2,000 new ids", lambda: [uuid7() for _ in range(2000)]),
        ("2,000 new UUID v4 ids", lambda: [str(uuid.uuid4()) for _ in range(2000)]),
        ("2,000 stored ids of one hour (a resent batch)", lambda: one_hour),
        ("2,000 stored ids from 23 days at random", lambda: at_random),
    ]
    print("| look-up of | `events` (before 0017): rows read, time | `event_keys`: rows read, time |")
    print("|---|---|---|")
    for label, ids_of in cases:
        cells = []
        for sql in (BEFORE, NOW):
            runs = []
            for _ in range(args.runs):
                ids = "[" + ",".join(f"'{i}'" for i in ids_of()) + "]"
                runs.append(ch.measure(sql, {
                    "partners": f"['{PARTNER}']", "partner": PARTNER, "names": NAMES,
                    "ids": ids, "since": since,
                }))
            cells.append(f"{runs[-1][0]:,}, {statistics.median(r[1] for r in runs):.1f} ms")
        print(f"| {label} | {cells[0]} | {cells[1]} |")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
