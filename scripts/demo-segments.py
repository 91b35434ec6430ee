"""`make run`: the demo partner's seed events and segments, then the banner's segment lines.

Seed events go through `/v1/server/events` with the demo API key, so they are stored and counted
like any other. Their event ids are derived from the partner id and a label, so resending them on
every start stores nothing new (the collector answers `duplicate`): the events keep the times of
the first start. Segments are created when no segment of the partner has their name.

Prints the segment list (with member counts) and one curl line per segment API call.
Standard library only.
"""
import argparse
import json
import sys
import time
import urllib.error
import urllib.request
import uuid

DAY_MS = 24 * 60 * 60 * 1000

# (label, customer, name, source, days ago, context)
SEED_EVENTS = [
    ("c1-jacket", "demo-customer-1", "product_viewed", "online_store", 2, {"category": "Jacket", "price": 129.0}),
    ("c1-purchase", "demo-customer-1", "purchase_completed", "online_store", 20, {"total_price": 129.0, "points_collected": 150}),
    ("c2-jacket", "demo-customer-2", "product_viewed", "mobile_app", 1, {"category": "Jacket", "price": 99.0}),
    ("c2-purchase", "demo-customer-2", "purchase_completed", "mobile_app", 3, {"total_price": 99.0, "points_collected": 60}),
    ("c3-bag", "demo-customer-3", "product_viewed", "online_store", 0, {"category": "Bags", "price": 45.0}),
    ("c3-purchase", "demo-customer-3", "purchase_completed", "online_store", 25, {"total_price": 45.0, "points_collected": 20}),
]

JACKET = {"key": "category", "op": "eq", "value": "Jacket"}

SEGMENTS = [
    ("Viewed a Jacket in the last 30 days",
     {"event": {"name": "product_viewed", "where": [JACKET], "period": {"last_days": 30}}}),
    ("Viewed a Jacket in the Online Store in the last 30 days",
     {"event": {"name": "product_viewed", "sources": ["online_store"], "where": [JACKET],
                "count": {"op": "gte", "value": 1}, "period": {"last_days": 30}}}),
    ("Bought, but not in the last 14 days",
     {"all": [{"event": {"name": "purchase_completed"}},
              {"not": {"event": {"name": "purchase_completed", "period": {"last_days": 14}}}}]}),
    ("Has a birthday in the profile",
     {"profile": {"field": "birthday", "op": "exists"}}),
]


def call(method, url, token, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def rfc3339(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--collector", required=True)
    ap.add_argument("--partner-file", required=True)
    ap.add_argument("--admin-token", required=True)
    args = ap.parse_args()
    with open(args.partner_file) as f:
        demo = json.load(f)
    partner, api_key, base = demo["id"], demo["api_key"], args.collector
    admin = f"{base}/v1/admin/partners/{partner}"

    now = int(time.time() * 1000)
    events = [{
        "event_id": str(uuid.uuid5(uuid.UUID(partner), label)),
        "kind": "customer", "name": name, "source": source, "customer_id": customer,
        "occurred_at": rfc3339(now - days * DAY_MS), "context": context,
    } for label, customer, name, source, days, context in SEED_EVENTS]
    status, answer = call("POST", f"{base}/v1/server/events", api_key,
                          {"partner_id": partner, "sent_at": rfc3339(now), "events": events})
    if status != 200:
        print(f"WARNING: the demo seed events were refused: {status} {answer}", file=sys.stderr)

    status, listing = call("GET", f"{admin}/segments", args.admin_token)
    if status != 200:
        print(f"WARNING: the demo segments could not be listed: {status} {listing}", file=sys.stderr)
        return
    have = {s["name"] for s in listing["segments"]}
    for name, definition in SEGMENTS:
        if name not in have:
            status, answer = call("POST", f"{admin}/segments", args.admin_token,
                                  {"name": name, "definition": definition})
            if status != 201:
                print(f"WARNING: demo segment {name!r} not created: {status} {answer}", file=sys.stderr)
    _, listing = call("GET", f"{admin}/segments", args.admin_token)
    segments = listing["segments"]
    for s in segments:
        _, page = call("GET", f"{admin}/segments/{s['id']}/customers?limit=1000", args.admin_token)
        ids = [c["customer_id"] for c in page["customers"]] if isinstance(page, dict) else []
        more = "+" if isinstance(page, dict) and page.get("next_cursor") else ""
        shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        print(f"  {s['id']}  {s['name']:<56} {len(ids)}{more} members  {shown}")

    first = segments[0]["id"] if segments else "SEGMENT_ID"
    auth = f"-H 'Authorization: Bearer {args.admin_token}'"
    ctype = "-H 'Content-Type: application/json'"
    jacket = json.dumps({"event": {"name": "product_viewed", "where": [JACKET], "period": {"last_days": 30}}})
    print()
    print("Segments API (README \"Segments\"):")
    print(f"  curl -sS {auth} {admin}/segments")
    print(f"  curl -sS {auth} {admin}/segments/{first}")
    print(f"  curl -sS {auth} '{admin}/segments/{first}/customers?limit=1'")
    print(f"  curl -sS {auth} {admin}/segments/{first}/customers.csv")
    print(f"  curl -sS {auth} {ctype} {admin}/segments/preview -d '{{\"definition\": {jacket}, \"by_source\": true}}'")
    print(f"  SID=$(curl -sS {auth} {ctype} {admin}/segments -d '{{\"name\": \"Big spenders\", \"definition\": "
          "{\"event\": {\"name\": \"purchase_completed\", \"where\": [{\"key\": \"total_price\", \"op\": \"gte\", \"value\": 100}]}}}' "
          "| python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id\"])'); echo $SID")
    print(f"  curl -sS {auth} {ctype} -X PATCH {admin}/segments/$SID -d '{{\"name\": \"Spent 100 or more at once\"}}'")
    print(f"  curl -sS {auth} -X DELETE -w '%{{http_code}}\\n' {admin}/segments/$SID")


if __name__ == "__main__":
    main()
