#!/usr/bin/env python3
"""Prints the one benchmark table: every row the benchmarks of one
bench/run.sh appended to ROWS (JSON lines, see benches/support/rows.rs),
as target, measured, reference, ratio and met. Exits 1 if a target was
missed, so the run's status says it too.

Usage: bench/table.py ROWS [--markdown]
"""
import json
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    markdown = "--markdown" in sys.argv[2:]
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    if not rows:
        sys.exit(f"{sys.argv[1]}: no benchmark recorded a figure")
    head = ("benchmark", "target", "measured", "reference", "ratio", "met")
    cells = [head] + [
        (r["bench"], r["target"], r["measured"], r["reference"] or "-", f"{r['ratio']:.2f}x",
         "report" if r["met"] is None else "yes" if r["met"] else "NO")
        for r in rows
    ]
    if markdown:
        for i, c in enumerate(cells):
            print("| " + " | ".join(c) + " |")
            if i == 0:
                print("|" + "---|" * len(c))
    else:
        widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
        for c in cells:
            print("  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip())
    missed = [r for r in rows if r["met"] is False]
    held = sum(1 for r in rows if r["met"])
    print(f"\n{held} targets met, {len(missed)} missed, "
          f"{sum(1 for r in rows if r['met'] is None)} figures reported")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
