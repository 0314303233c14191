# Instructions per request of two callgrind profiles over the same number of
# requests, and the functions whose exclusive cost differs most.
#   callgrind_diff.py BARE.out SEGEDGE.out REQUESTS [ROWS]
import re
import subprocess
import sys


def load(path):
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--auto=no", "--threshold=100", path],
                          capture_output=True, text=True, check=True).stdout
    costs, total = {}, 0
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)$", line)
        if not m or m.group(2)[:1] in "<>=":
            continue
        cost = int(m.group(1).replace(",", ""))
        name = re.sub(r"\s*\[.*\]\s*$", "", m.group(2))
        if "PROGRAM TOTALS" in name:
            total = cost
        elif not re.search(r"\(below main\)|:main$|__libc_start_main|^\?\?\?:0x0+1ab70$", name):
            costs[name] = costs.get(name, 0) + cost
    return costs, total


bare, bare_total = load(sys.argv[1])
seg, seg_total = load(sys.argv[2])
n = int(sys.argv[3])
rows = int(sys.argv[4]) if len(sys.argv) > 4 else 30
print(f"instructions per request: bare {bare_total / n:.0f}, segedge-header {seg_total / n:.0f}, "
      f"difference {(seg_total - bare_total) / n:.0f}")
diff = sorted(((seg.get(k, 0) - bare.get(k, 0)) / n, k) for k in set(bare) | set(seg))
for cost, name in sorted(diff, key=lambda d: -abs(d[0]))[:rows]:
    print(f"{cost:8.0f}  {name[:140]}")
