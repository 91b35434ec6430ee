#!/usr/bin/env python3
"""The demo partner's campaign, for `make run` (scripts/run.sh): the demo shop's accounts get
profiles with an email, the partner's email `From` is set, and the active campaign "Abandoned
cart (demo)" is created when missing: added to cart, no purchase within 1 minute -> an email
naming the product from the event's context. Prints how to try it and where the mail lands.

    python3 scripts/demo-campaign.py --collector URL --partner-file FILE --admin-token TOKEN --mail-dir DIR

Standard library only. Safe to repeat: a profile upsert that changes nothing stores nothing, and
an existing campaign of that name is left as it is (paused by hand, it stays paused).
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

NAME = "Abandoned cart (demo)"

# The demo shop's accounts (examples/shop/catalog.js): log in as one of them, add to cart, leave.
ACCOUNTS = [
    ("1042", {"first_name": "Anna", "last_name": "Novak", "email": "anna@example.com",
              "consents": {"email": True}}),
    ("1043", {"first_name": "Ben", "last_name": "Okafor", "email": "ben@example.com",
              "consents": {"email": True}}),
]

CAMPAIGN = {
    "name": NAME,
    "status": "active",
    "trigger": {"event": {"name": "added_to_cart"}},
    "steps": [{"wait": {
        # The shop's order event is `purchase` (examples/shop/shop.js).
        "until_event": "purchase",
        "timeout": {"minutes": 1},
        "on_timeout": [{"send": {"channel": "email", "template": {
            "subject": "Still thinking about the {{ client.eventContext.product_name | default(\"things in your cart\") }}?",
            "body": "<p>Hi {{ client.first_name | default(\"there\") }},</p>"
                    "<p>your {{ client.eventContext.product_name | default(\"cart\") }} is still in your cart.</p>"
                    "<p><a href=\"http://localhost:8081/shop/cart.html\">Back to your cart</a></p>",
        }}}],
    }}],
}


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--collector", required=True)
    ap.add_argument("--partner-file", required=True)
    ap.add_argument("--admin-token", required=True)
    ap.add_argument("--mail-dir", required=True)
    args = ap.parse_args()
    with open(args.partner_file) as f:
        demo = json.load(f)
    partner, api_key, base = demo["id"], demo["api_key"], args.collector
    admin = f"{base}/v1/admin/partners/{partner}"
    ok = True

    for customer, profile in ACCOUNTS:
        status, answer = call("PUT", f"{base}/v1/server/customers/{customer}", api_key, profile)
        if status != 200:
            ok = False
            print(f"WARNING: demo profile {customer} not written: {status} {answer}", file=sys.stderr)
    status, answer = call("PUT", f"{admin}/channels/email", args.admin_token,
                          {"from": "Demo Shop <shop@example.com>"})
    if status != 200:
        ok = False
        print(f"WARNING: the demo email From was not set: {status} {answer}", file=sys.stderr)

    status, listing = call("GET", f"{admin}/campaigns", args.admin_token)
    if status != 200:
        print(f"WARNING: the demo campaigns could not be listed: {status} {listing}", file=sys.stderr)
        return 1
    found = [c for c in listing["campaigns"] if c["name"] == NAME]
    if found:
        campaign = found[0]
    else:
        status, campaign = call("POST", f"{admin}/campaigns", args.admin_token, {"definition": CAMPAIGN})
        if status != 201:
            print(f"WARNING: the demo campaign was not created: {status} {campaign}", file=sys.stderr)
            return 1
    cid = campaign["id"]
    auth = f"-H 'Authorization: Bearer {args.admin_token}'"
    print(f"  {cid}  {NAME}  ({campaign['status']}): added to cart, no purchase within 1 minute -> an email")
    print(f"  Try it: open the demo shop, log in as anna@example.com, add a product to the cart, leave.")
    print(f"  About a minute later the email is a file in {args.mail_dir}/ (NNNNNN.eml, the newest last):")
    print(f"    ls -t {args.mail_dir} | head -3; cat {args.mail_dir}/$(ls {args.mail_dir} | tail -1)")
    print(f"  The message log (README \"Channels and the message log\"):")
    print(f"    curl -sS {auth} {admin}/campaigns/{cid}/messages")
    print(f"    curl -sS {auth} {admin}/customers/1042/messages")
    print(f"    curl -sS {auth} {admin}/channels")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
