#!/usr/bin/env python3
"""Where two builds differ, per request, by function's own instructions (B - A), biggest first.

    python3 bench/instructions/diff.py A/callgrind.out REQUESTS_A B/callgrind.out REQUESTS_B
"""
import subprocess, sys, re
def load(path, n):
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", path], capture_output=True, text=True).stdout
    d = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.*?)(?: \[.*\])?$", line)
        if m and "PROGRAM TOTALS" not in line:
            name = m.group(2).split(":", 1)[-1][:110]
            d[name] = d.get(name, 0) + int(m.group(1).replace(",", "")) / n
    return d
a = load(sys.argv[1], int(sys.argv[2])); b = load(sys.argv[3], int(sys.argv[4]))
rows = sorted(((b.get(k, 0) - a.get(k, 0), a.get(k, 0), b.get(k, 0), k) for k in set(a) | set(b)), key=lambda r: -abs(r[0]))
print(f"total A {sum(a.values()):.0f}  B {sum(b.values()):.0f}  diff {sum(b.values())-sum(a.values()):+.0f} per request")
for d, x, y, k in rows[:40]:
    print(f"{d:+9.0f} {x:9.0f} {y:9.0f}  {k}")
