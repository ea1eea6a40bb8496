#!/usr/bin/env bash
# The webhook intake benchmark (benches/intake.rs): the real router, delivery
# log and HTTP server in a child process, driven over loopback by keep-alive
# HTTP/1.1 clients sending signed pushes. Prints deliveries/s, p50/p99/max
# latency (at saturation, and paced at the target rate) and the server's RSS
# (idle, and after the load), then whether the targets were met:
# 10,000 deliveries/s, p99 under 5 ms, idle RSS under 30 MB.
#
# Knobs (environment): CAIRN_BENCH_CONNECTIONS (32), CAIRN_BENCH_SECONDS per
# phase (5), CAIRN_BENCH_RATE of the paced phase (10000), CAIRN_BENCH_LOG
# (server log filter, "info"; "off" for none).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== webhook intake"
cargo bench --quiet --bench intake
