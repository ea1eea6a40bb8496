#!/usr/bin/env python3
"""The data-path benchmark of cairn: publish and fetch against DVC, md5sum
and rclone, side by side on the same data and the same S3 server, in one run.

Data: one 1 GiB random file, and 10,000 random files of 4 KiB in 100
folders. Servers: s3s-fs (fast, so the client's own efficiency shows) and
Garage (a production object store). For each pair it measures:

  md5sum                  hashing the data once (the floor for any DVC-style client)
  dvc add + dvc push      what the seed's worker does
  cairn publish           hash + upload what is missing + write the pointer
  cairn publish (again)   unchanged data: hash, find nothing missing, upload nothing
  rclone                  a raw upload of the same bytes, no hashing: the server's ingest limit
  dvc pull / cairn fetch  into an empty workspace

and prints one table of figures and one of targets with ratios. Peak RSS is
the largest resident set of the measured process tree (getrusage); load is the
1-minute load average each measurement started at (--max-load waits for a
quiet machine first).

Run it through bench/run.sh, which builds what it needs.
"""

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ACCESS, SECRET = "cairnbenchaccess", "cairnbenchsecretkey0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited early ({proc.returncode})")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    sys.exit(f"{what} did not listen on {port}")


PROBE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=open(sys.argv[1], 'w')).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


# --max-load: wait before each measurement until the 1-minute load average is
# below this (None: do not wait), for at most QUIET_WAIT seconds.
MAX_LOAD = None
QUIET_WAIT = 900


def quiet():
    """Waits until the machine is quiet (see MAX_LOAD); returns the 1-minute
    load average the measurement starts at."""
    deadline = time.time() + QUIET_WAIT
    while MAX_LOAD is not None and os.getloadavg()[0] >= MAX_LOAD and time.time() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


def measure(cmd, cwd=None, env=None):
    """Wall seconds, peak RSS (MiB) and starting load of one command, which
    must succeed.

    A fresh probe process runs the command, so the children's maximum RSS it
    reports belongs to this command's process tree alone."""
    load = quiet()
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", PROBE, log.name, *map(str, cmd)],
                             cwd=cwd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            sys.exit(f"failed: {' '.join(map(str, cmd))}\n{log.read()}")
    return wall, int(out.stdout.strip()) / 1024, load


def run(cmd, cwd=None, env=None):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{out.stdout}\n{out.stderr}")
    return out.stdout


class Server:
    def __init__(self, name, endpoint, region, bucket, key, secret, procs, root):
        self.name, self.endpoint, self.region, self.bucket = name, endpoint, region, bucket
        self.key, self.secret, self.procs, self.root = key, secret, procs, root

    def env(self):
        env = dict(os.environ)
        env.update(AWS_ACCESS_KEY_ID=self.key, AWS_SECRET_ACCESS_KEY=self.secret,
                   AWS_EC2_METADATA_DISABLED="true", DVC_NO_ANALYTICS="1")
        env.pop("AWS_PROFILE", None)
        return env

    def dvc_config(self, prefix):
        return (f"[core]\n    remote = storage\n['remote \"storage\"']\n"
                f"    url = s3://{self.bucket}/{prefix}\n    endpointurl = {self.endpoint}\n"
                f"    region = {self.region}\n")

    def stop(self):
        for p in self.procs:
            p.kill()
            p.wait()
        # several GiB: gone before the next server fills the disk again
        shutil.rmtree(self.root, ignore_errors=True)


def start_s3s(tools, work):
    root = work / "s3s-root"
    shutil.rmtree(root, ignore_errors=True)
    (root / "bench").mkdir(parents=True)
    port = free_port()
    proc = subprocess.Popen([tools["s3s"], root, str(port), ACCESS, SECRET], stderr=subprocess.DEVNULL)
    wait_port(port, proc, "s3s-fs")
    return Server("s3s-fs", f"http://127.0.0.1:{port}", "us-east-1", "bench", ACCESS, SECRET, [proc], root)


def start_garage(tools, work):
    root = work / "garage-root"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rpc, s3 = free_port(), free_port()
    conf = root / "garage.toml"
    conf.write_text(
        f'metadata_dir = "{root}/meta"\ndata_dir = "{root}/data"\ndb_engine = "lmdb"\n'
        f'replication_factor = 1\nrpc_bind_addr = "127.0.0.1:{rpc}"\n'
        f'rpc_public_addr = "127.0.0.1:{rpc}"\nrpc_secret = "{os.urandom(32).hex()}"\n\n'
        f'[s3_api]\ns3_region = "garage"\napi_bind_addr = "127.0.0.1:{s3}"\n')
    g = [tools["garage"], "-c", conf]
    proc = subprocess.Popen(g + ["server"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(s3, proc, "garage")
    wait_port(rpc, proc, "garage rpc")
    node = run(g + ["node", "id", "-q"]).strip().split("@")[0]
    run(g + ["layout", "assign", "-z", "dc1", "-c", "100G", node])
    run(g + ["layout", "apply", "--version", "1"])
    out = run(g + ["key", "create", "bench"])
    field = lambda label: next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith(label))
    run(g + ["bucket", "create", "bench"])
    run(g + ["bucket", "allow", "--read", "--write", "--owner", "bench", "--key", "bench"])
    return Server("garage", f"http://127.0.0.1:{s3}", "garage", "bench",
                  field("Key ID"), field("Secret key"), [proc], root)


def make_data(work, size_mib, files):
    data = work / "data"
    big, small = data / "big.bin", data / "small"
    if not big.exists() or big.stat().st_size != size_mib << 20:
        data.mkdir(parents=True, exist_ok=True)
        with open(big, "wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(1 << 20))
    if not small.exists() or sum(1 for _ in small.rglob("*") if _.is_file()) != files:
        shutil.rmtree(small, ignore_errors=True)
        per = max(1, files // 100)
        for i in range(files):
            d = small / f"d{i // per:03d}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i:05d}.bin").write_bytes(os.urandom(4096))
    return {"1 GiB file": big, "10k x 4 KiB": small}


def dvc_repo(path, server, prefix, tools):
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    run([tools["dvc"], "init", "--no-scm", "-q"], cwd=path)
    # keep `dvc init --no-scm`'s setting: these repositories have no git
    config = server.dvc_config(prefix).replace("[core]\n", "[core]\n    no_scm = True\n")
    (path / ".dvc" / "config").write_text(config)


def place(src, dest):
    """Hard-link the data into a repository: no copy, same bytes."""
    subprocess.run(["cp", "-al", src, dest], check=True)


def bench_one(server, label, src, tools, work):
    env = server.env()
    tag = "big" if src.is_file() else "small"
    name = src.name
    r = {}
    files = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file())
    md5 = work / f"md5-{tag}.list"
    md5.write_text("\0".join(map(str, files)))
    # Every step reads the data from the page cache (the machine has the
    # memory for it): read it once first, so the first one measured does not
    # pay for the disk alone.
    subprocess.run(["sh", "-c", f"xargs -0 cat < '{md5}' > /dev/null"], check=True)
    r["md5sum"] = measure(["sh", "-c", f"xargs -0 md5sum < '{md5}' > /dev/null"])

    d = work / f"dvc-{server.name}-{tag}"
    dvc_repo(d, server, f"dvc-{tag}", tools)
    place(src, d / name)
    add = measure([tools["dvc"], "add", "-q", name], cwd=d, env=env)
    push = measure([tools["dvc"], "push", "-q"], cwd=d, env=env)
    r["dvc add"], r["dvc push"] = add, push
    r["dvc add + push"] = (add[0] + push[0], max(add[1], push[1]), max(add[2], push[2]))

    c = work / f"cairn-{server.name}-{tag}"
    dvc_repo(c, server, f"cairn-{tag}", tools)
    place(src, c / name)
    r["cairn publish"] = measure([tools["cairn"], "publish", name], cwd=c, env=env)
    r["cairn publish (unchanged)"] = measure([tools["cairn"], "publish", name], cwd=c, env=env)
    with open(c / f"{name}.dvc") as a, open(d / f"{name}.dvc") as b:
        if a.read() != b.read():
            sys.exit(f"{label}: cairn's pointer differs from dvc's")

    rc = ["rclone", "--s3-provider", "Other", "--s3-endpoint", server.endpoint,
          "--s3-access-key-id", server.key, "--s3-secret-access-key", server.secret,
          "--s3-region", server.region, "--s3-disable-checksum", "--s3-no-check-bucket"]
    target = f":s3:{server.bucket}/rclone-{tag}/{name}"
    # rclone's S3 client cannot take a custom CA bundle with its transport,
    # and none is needed on loopback http
    rc_env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    r["rclone upload"] = measure(rc + (["copyto", src, target] if src.is_file() else ["copy", src, target]),
                                 env=rc_env)

    f = work / f"fetch-cairn-{server.name}-{tag}"
    dvc_repo(f, server, f"cairn-{tag}", tools)
    shutil.copy(c / f"{name}.dvc", f)
    r["cairn fetch"] = measure([tools["cairn"], "fetch", name], cwd=f, env=env)
    p = work / f"pull-dvc-{server.name}-{tag}"
    dvc_repo(p, server, f"dvc-{tag}", tools)
    shutil.copy(d / f"{name}.dvc", p)
    r["dvc pull"] = measure([tools["dvc"], "pull", "-q"], cwd=p, env=env)
    for path in (d, c, f, p):
        shutil.rmtree(path, ignore_errors=True)
    return r


def load():
    """The 1, 5 and 15 minute load averages: figures taken on a busy machine
    are not comparable."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(results):
    print()
    print(f"{'server':<8} {'data':<12} {'step':<26} {'seconds':>8} {'peak MiB':>9} {'load':>5}")
    for (server, label), r in results.items():
        for step, (wall, rss, load) in r.items():
            print(f"{server:<8} {label:<12} {step:<26} {wall:>8.2f} {rss:>9.0f} {load:>5.2f}")
    print()
    print(f"{'server':<8} {'data':<12} {'target':<52} {'measured':>10} {'ratio':>7}  met")
    for (server, label), r in results.items():
        t = lambda k: r[k][0]
        big = label.startswith("1 GiB")
        speedup = 3 if big else 5
        rows = [
            (f"publish >= {speedup}x faster than dvc add + push", f"{t('cairn publish'):.2f}s",
             f"dvc add + push {t('dvc add + push'):.2f}s", t("dvc add + push") / t("cairn publish"),
             lambda x: x >= speedup, "x"),
            ("publish within 1.25x of rclone's raw upload", f"{t('cairn publish'):.2f}s",
             f"rclone {t('rclone upload'):.2f}s", t("cairn publish") / t("rclone upload"),
             lambda x: x <= 1.25, "x"),
            ("unchanged re-publish within 1.2x of md5sum", f"{t('cairn publish (unchanged)'):.2f}s",
             f"md5sum {t('md5sum'):.2f}s", t("cairn publish (unchanged)") / t("md5sum"),
             lambda x: x <= 1.2, "x"),
        ]
        rows.append(("fetch vs dvc pull (report: x faster)", f"{t('cairn fetch'):.2f}s",
                     f"dvc pull {t('dvc pull'):.2f}s", t("dvc pull") / t("cairn fetch"), None, "x"))
        peak = max(r[k][1] for k in ("cairn publish", "cairn publish (unchanged)", "cairn fetch"))
        peak_mb = peak * 1.048576
        rows.append(("peak RSS of cairn under 200 MB", f"{peak_mb:.0f}MB", "", peak_mb / 200,
                     lambda x: x < 1, "x"))
        for name, measured, reference, ratio, ok, unit in rows:
            met = None if ok is None else ok(ratio)
            print(f"{server:<8} {label:<12} {name:<52} {measured:>10} {ratio:>6.2f}{unit[:1]}  "
                  f"{'-' if met is None else 'yes' if met else 'NO'}")
            # The targets hold on s3s-fs; on Garage the same ratios are reported.
            record_row(f"data path, {server}, {label}", name, measured, reference, ratio,
                       met if server == "s3s-fs" else None)


def record_row(bench, target, measured, reference, ratio, met):
    """One line for bench/table.py, when bench/run.sh asks for it."""
    path = os.environ.get("CAIRN_BENCH_ROWS")
    if not path:
        return
    with open(path, "a") as f:
        f.write(json.dumps({"bench": bench, "target": target, "measured": measured,
                            "reference": reference, "ratio": ratio, "met": met}) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="s3s,garage")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--work", default=os.environ.get("CAIRN_BENCH_DIR"))
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--max-load", type=float,
                    help="before each measurement, wait (up to 15 minutes) until the 1-minute "
                         "load average is below this; the load each one started at is reported")
    args = ap.parse_args()
    global MAX_LOAD
    MAX_LOAD = args.max_load
    tools = {k: os.environ[v] for k, v in [("cairn", "CAIRN_BIN"), ("s3s", "CAIRN_S3S_BIN"),
                                             ("garage", "CAIRN_GARAGE_BIN"), ("dvc", "CAIRN_DVC_BIN")]}
    work = Path(args.work or tempfile.mkdtemp(prefix="cairn-bench."))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder {work}; {os.cpu_count()} cores; dvc {run([tools['dvc'], '--version']).strip()}; "
          f"{run(['rclone', 'version']).splitlines()[0]}; load {load()}")
    datasets = make_data(work, args.size_mib, args.files)
    starters = {"s3s": start_s3s, "garage": start_garage}
    results = {}
    for name in args.servers.split(","):
        server = starters[name](tools, work)
        try:
            for label, src in datasets.items():
                print(f"== {server.name}: {label} (load {load()})", flush=True)
                results[(server.name, label)] = bench_one(server, label, src, tools, work)
        finally:
            server.stop()
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {f"{s}/{l}": {k: {"seconds": v[0], "peak_mib": v[1], "load": v[2]} for k, v in r.items()}
             for (s, l), r in results.items()}, indent=2))


if __name__ == "__main__":
    main()
