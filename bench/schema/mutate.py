#!/usr/bin/env python3
"""Writes data/mutated.jsonl: every track/identify/group event of data/sample.jsonl with
each top-level property (track) or trait (identify, group) replaced by a value of another
JSON type, so that planned events violate their rules in several places at once. The
output is committed; rerun only if sample.jsonl changes."""
import json, os

here = os.path.dirname(os.path.abspath(__file__))

def other(v):
    if isinstance(v, bool): return "yes"
    if isinstance(v, (int, float)): return str(v)
    if isinstance(v, str): return 12345
    if isinstance(v, list): return {"list": len(v)}
    if isinstance(v, dict): return "object"
    return 0

with open(os.path.join(here, "data/sample.jsonl")) as f, \
     open(os.path.join(here, "data/mutated.jsonl"), "w") as out:
    for line in f:
        ev = json.loads(line)
        key = {"track": "properties", "identify": "traits", "group": "traits"}.get(ev.get("type"))
        if not key or not isinstance(ev.get(key), dict) or not ev[key]:
            continue
        ev[key] = {k: other(v) for k, v in ev[key].items()}
        out.write(json.dumps(ev, ensure_ascii=False, separators=(",", ":")) + "\n")
