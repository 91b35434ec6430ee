"""Prints the sources of a partner (admin API JSON on stdin) as a table for `make run`."""
import json
import sys

for s in json.load(sys.stdin)["sources"]:
    domain = s["domain"] or "-"
    print(f"  {s['code']:<14} {s['name']:<20} domain={domain:<10} active={s['active']} system={s['system']}")
