#!/usr/bin/env python3
"""Per-webhook figures from a callgrind output file, for scripts/perf.sh.

The programs run their measured pass inside `counted_region` and exit right after it;
valgrind runs with `--zero-before='*counted_region*'`, so the file's costs are that pass
(plus a few hundred instructions of exit).

Prints one JSON object, every figure divided by N (the deliveries in the pass):
  instructions  all instructions (Ir) in the file
  sha256        inclusive Ir of SHA-256 compression: the cost of every call into a
                function of sha2's sha256 module from outside it (so nested calls
                inside the module count once)
  mallocs       calls to malloc and calloc (heap allocations)
  reallocs      calls to realloc
  frees         calls to free

Usage: cgsum.py CALLGRIND_OUT N
"""

import json
import re
import sys
from collections import defaultdict

SHA256 = re.compile(r"^sha2::sha256::")


def parse(path):
    """Total Ir, and per (caller, callee): call count and inclusive Ir of those calls."""
    names = {}  # compressed id -> name ("fn=(12) name" defines, "fn=(12)" reuses)
    calls = defaultdict(lambda: [0, 0])
    total, ir_index, fn, callee, pending = 0, 0, None, None, None
    ref = re.compile(r"\((\d+)\)(?: (.*))?$")

    def name(spec):
        m = ref.match(spec)
        if not m:
            return spec
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), spec)

    with open(path, errors="replace") as f:
        for line in f:
            c = line[:1]
            if c.isdigit() or c in "+-*":
                fields = line.split()
                cost = int(fields[ir_index + 1]) if len(fields) > ir_index + 1 else 0
                if pending is not None:  # the line after calls=: the calls' inclusive cost
                    calls[(fn, callee)][0] += pending
                    calls[(fn, callee)][1] += cost
                    pending = None
                else:
                    total += cost
            elif line.startswith("fn="):
                fn = name(line[3:].strip())
            elif line.startswith("cfn="):
                callee = name(line[4:].strip())
            elif line.startswith("calls="):
                pending = int(line[6:].split()[0])
            elif line.startswith("events:"):
                ir_index = line.split()[1:].index("Ir")
            elif line.startswith(("fl=", "fi=", "fe=", "ob=", "cob=", "cfi=", "cfl=")):
                # Files and objects can be compressed too; their names are not needed.
                pass
    return total, calls


def short(name):
    """A Rust symbol without its `::h<hash>` suffix."""
    return re.sub(r"::h[0-9a-f]{16}$", "", name or "")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    total, calls = parse(sys.argv[1])
    n = int(sys.argv[2])
    count = defaultdict(int)
    sha = 0
    for (caller, callee), (k, cost) in calls.items():
        count[short(callee)] += k
        if SHA256.search(short(callee)) and not SHA256.search(short(caller)):
            sha += cost
    out = {
        "instructions": round(total / n),
        "sha256": round(sha / n),
        "mallocs": round((count["malloc"] + count["calloc"]) / n, 2),
        "reallocs": round(count["realloc"] / n, 2),
        "frees": round(count["free"] / n, 2),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
