#!/usr/bin/env python3
"""Drive headless Chromium over cairn's dashboard and check what it shows.

Called by scripts/dashboard-check.sh with a running `cairn serve` and the run
history of its repository. For each page it takes a screenshot (and checks
the picture: the DAG's state colours must be on it) and dumps the DOM after
the page's script has run (and checks the elements: DAG nodes and their
states, exit codes, links, the live refresh). Standard library only.
"""

import argparse
import json
import os
import struct
import subprocess
import sys
import urllib.parse
import zlib
from html.parser import HTMLParser

FAILURES = []
CHECKED = [0]


def check(condition, what):
    CHECKED[0] += 1
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        FAILURES.append(what)


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag = tag
        self.attrs = dict(attrs)
        self.parent = parent
        self.children = []
        self.text = []

    def all_text(self):
        out = list(self.text)
        for c in self.children:
            out.append(c.all_text())
        return "".join(out)

    def walk(self):
        yield self
        for c in self.children:
            yield from c.walk()

    def find_all(self, tag=None, **attrs):
        for n in self.walk():
            if tag and n.tag != tag:
                continue
            ok = True
            for k, v in attrs.items():
                k = k.rstrip("_").replace("_", "-")
                have = n.attrs.get(k)
                if v is True:
                    ok = ok and have is not None
                elif k == "class":
                    ok = ok and have is not None and v in have.split()
                else:
                    ok = ok and have == v
            if ok:
                yield n


VOID = {"meta", "link", "br", "img", "input", "hr", "rect", "path", "circle", "line", "polyline"}


class Tree(HTMLParser):
    """A small DOM: enough to find elements by tag and attribute."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", [], None)
        self.cur = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur.children.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not None and n.tag != tag:
            n = n.parent
        if n is not None and n.parent is not None:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.text.append(data)


def chromium(args, profile):
    base = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--hide-scrollbars", "--user-data-dir=" + profile,
    ]
    return subprocess.run(base + args, capture_output=True, timeout=120)


def dom(url, profile, budget_ms=0):
    args = ["--dump-dom"]
    if budget_ms:
        args.append("--virtual-time-budget=%d" % budget_ms)
    out = chromium(args + [url], profile)
    if out.returncode != 0:
        raise SystemExit("chromium --dump-dom %s failed: %s" % (url, out.stderr.decode(errors="replace")))
    tree = Tree()
    tree.feed(out.stdout.decode("utf-8", errors="replace"))
    return tree.root


def screenshot(url, path, profile, height=1000):
    out = chromium(["--window-size=1400,%d" % height, "--screenshot=" + path, url], profile)
    if out.returncode != 0 or not os.path.exists(path):
        raise SystemExit("chromium --screenshot %s failed: %s" % (url, out.stderr.decode(errors="replace")))
    return read_png(path)


def read_png(path):
    """(width, height, set of RGB tuples) of an 8-bit non-interlaced PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG: " + path
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and interlace == 0 and colour in (2, 6), "unexpected PNG format"
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    prev = bytearray(stride)
    colours = set()
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        for x in range(0, stride, channels * 2):  # every other pixel is plenty
            colours.add(tuple(line[x:x + 3]))
        prev = line
    return width, height, colours


def has_colour(colours, hex_colour):
    want = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return any(all(abs(c[i] - want[i]) <= 6 for i in range(3)) for c in colours)


GREEN, RED = "#1a7f37", "#cf222e"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--runs", required=True, help="`cairn runs --output json` of the served repository")
    ap.add_argument("--out", required=True, help="folder for screenshots and the browser profile")
    ap.add_argument("--save", help="copy the screenshot of / here")
    a = ap.parse_args()
    base = a.url.rstrip("/")
    profile = os.path.join(a.out, "profile")
    runs = json.load(open(a.runs))
    sales = [r for r in runs if r["pipeline"] == "sales"]
    failed = next(r for r in sales if r["phase"] == "failed")
    good = next(r for r in sales if r["phase"] == "succeeded" and r["branch"] == "main")

    # The overview: every pipeline with its schedule, trigger, last run, version, proposal.
    page = dom(base + "/", profile)
    rows = {n.attrs["data-pipeline"]: n for n in page.find_all("tr", class_="pipeline")}
    check(set(rows) == {"sales", "inventory"}, "/ lists both pipelines (%s)" % sorted(rows))
    sales_row = rows.get("sales")
    if sales_row:
        text = sales_row.all_text()
        check("0 6 * * 1" in text and "Europe/Paris" in text, "/ shows the schedule of sales")
        check("etl/**" in text, "/ shows the push paths of sales")
        check("branch cairn/sales" in text, "/ shows the proposal waiting on cairn/sales")
        check(any(True for _ in sales_row.find_all("span", data_phase="succeeded")), "/ shows the last run's outcome")
        check(any(True for _ in sales_row.find_all("code", class_="md5")), "/ shows the current version")
        links = [n.attrs.get("href", "") for n in sales_row.find_all("a")]
        check(any(h.startswith("/pipelines/sales?repo=") for h in links), "/ links the pipeline page")
        check(any(h.startswith("/runs/") for h in links), "/ links the last run")
    inv = rows.get("inventory")
    if inv:
        check("files" in inv.all_text(), "/ shows the file count of a directory dataset")
    # With JavaScript on, <main> refreshes itself from the fragment.
    live = dom(base + "/", profile, budget_ms=25000)
    main = next(live.find_all("main", id="live"), None)
    check(main is not None and "data-refreshed" in main.attrs and "data-error" not in main.attrs,
          "/ refreshed itself in the browser (data-refreshed=%s)" % (main.attrs.get("data-refreshed") if main else None))
    check(main is not None and any(True for _ in main.find_all("tr", class_="pipeline")),
          "the refreshed / still lists the pipelines")
    shot = os.path.join(a.out, "overview.png")
    w, h, colours = screenshot(base + "/", shot, profile, height=720)
    check(w == 1400 and has_colour(colours, GREEN), "the screenshot of / shows a green succeeded badge")
    if a.save:
        with open(shot, "rb") as src, open(a.save, "wb") as dst:
            dst.write(src.read())

    # The failed run: DAG nodes in their states, the exit code, the log tail.
    run_url = "%s/runs/%s" % (base, urllib.parse.quote(failed["id"]))
    page = dom(run_url, profile)
    nodes = {n.attrs["data-task"]: n.attrs["data-state"] for n in page.find_all("g", class_="node")}
    check(nodes == {"extract": "succeeded", "clean": "succeeded", "enrich": "succeeded", "report": "failed"},
          "the failed run's DAG colours each task by state (%s)" % nodes)
    edges = {(n.attrs["data-from"], n.attrs["data-to"]) for n in page.find_all("path", class_="edge")}
    check(edges == {("extract", "clean"), ("extract", "enrich"), ("clean", "report"), ("enrich", "report")},
          "the DAG draws every dependency (%s)" % sorted(edges))
    exits = [n.all_text() for n in page.find_all("td", class_="exit")]
    check("3" in exits, "the failed attempt's exit code is shown (%s)" % exits)
    report = next(page.find_all("section", id="task-report"), None)
    log = report and next(report.find_all("pre", class_="log"), None)
    check(log is not None and "<script>alert('report')</script> failed" in log.all_text(),
          "the failing task's log tail is shown as text")
    scripts = [n.attrs.get("src") for n in page.find_all("script")]
    check(scripts == ["/assets/dashboard.js"], "the only script is the dashboard's own (%s)" % scripts)
    lanes = [n.attrs["data-task"] for n in page.find_all("g", class_="lane")]
    check(sorted(lanes) == ["clean", "enrich", "extract", "report"], "the timeline has a bar per task")
    shot = os.path.join(a.out, "run-failed.png")
    _, _, colours = screenshot(run_url, shot, profile, height=1200)
    check(has_colour(colours, RED) and has_colour(colours, GREEN),
          "the failed run's screenshot shows red and green task nodes")

    # A run that made a version: links to its pointer commit and its dataset diff.
    run_url = "%s/runs/%s" % (base, urllib.parse.quote(good["id"]))
    page = dom(run_url, profile)
    states = {n.attrs["data-state"] for n in page.find_all("g", class_="node")}
    check(states == {"succeeded"}, "a good run's tasks all succeeded (%s)" % states)
    pointer = next(page.find_all("span", class_="pointer"), None)
    check(pointer is not None and good["commit"][:12] in pointer.all_text(), "the run shows its pointer commit")
    diff = next(page.find_all("a", class_="diff"), None)
    check(diff is not None, "the run links its dataset diff")
    if diff is not None:
        page = dom(base + diff.attrs["href"], profile)
        text = "".join(n.all_text() for n in page.find_all("pre", class_="diff-text"))
        check("data/sales.csv" in text, "the diff page shows the dataset diff")
        screenshot(base + diff.attrs["href"], os.path.join(a.out, "diff.png"), profile)

    # The pipeline: a bar per run, the versions on main with their commits.
    url = base + "/pipelines/sales"
    page = dom(url, profile)
    bars = [n.attrs["data-run"] for n in page.find_all("rect", class_="bar")]
    check(sorted(bars) == sorted(r["id"] for r in sales), "the chart has a bar per run (%d)" % len(bars))
    versions = [n.attrs["data-commit"] for n in page.find_all("tr", class_="version")]
    on_main = [r["commit"] for r in sales if r["branch"] == "main"]
    check(sorted(versions) == sorted(on_main), "the versions are the pointer commits on main (%d)" % len(versions))
    shot = os.path.join(a.out, "pipeline.png")
    _, _, colours = screenshot(url, shot, profile, height=1100)
    check(has_colour(colours, RED) and has_colour(colours, GREEN),
          "the pipeline's chart shows failed and succeeded runs")

    print("%d passed, %d failed" % (CHECKED[0] - len(FAILURES), len(FAILURES)))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
