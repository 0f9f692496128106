#!/usr/bin/env bash
# bench/capture_workers.sh BUILD_DIR [--partitions N] [--mb-per-partition M]
#                          [--runs R] [--dir DIR]
#
# Capture throughput of `ktape capture --workers-group` with 1, 2 and 4
# worker processes on this machine, over the same data, side by side, and
# a plain capture (one process, its default threads) for reference.
#
# Every worker joins a Kafka consumer group, which on librdkafka's mock
# takes about 3 s before the first partition is assigned; that start-up is
# measured on its own (the same workers capturing a topic of one record
# per partition) and the "net" columns take it out, so that they show how
# the capture itself scales.  The machine's cores bound the scaling: the
# mock broker, the workers and their compression threads share them.
set -euo pipefail

build=${1:?usage: bench/capture_workers.sh BUILD_DIR [options]}
shift
parts=32 mbpp=8 runs=2 dir=/tmp/kt-bench-capture-workers
. "$(dirname "$0")/lib.sh"
bench_parse_options "$@"
KTAPE=$(realpath "$build/ktape")
bench_prepare_dir

echo "ktape capture --workers-group bench, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
bench_machine_line
bench_start_sandbox "$dir/bootstrap" -n 1 --topic "bench:$parts" --topic "tiny:$parts"
"$KTAPE" gen -b "$BS" -t bench --bytes "$((parts * mbpp))M" -n 100000000 --keys 100000 --size 200-1000 \
	--headers 2 -z zstd >"$dir/gen.json"
"$KTAPE" gen -b "$BS" -t tiny -n "$parts" --round-robin >/dev/null
records=$(jq -r .records "$dir/gen.json")
bytes=$(jq -r .bytes "$dir/gen.json")
echo "topic: bench, $parts partitions, $records records, $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB of keys and values, produced zstd-compressed"

# Runs N workers of one group into a fresh repository; prints the wall
# seconds from the first start to the last exit.
run_workers() { # N TOPIC RUN
	local n=$1 topic=$2 i start end pids=()
	rm -rf "$dir/repo"
	sync
	start=$(date +%s.%N)
	for ((i = 1; i <= n; i++)); do
		# A fresh group each time: librdkafka's mock makes a group that
		# members just left wait a session timeout before the next join.
		"$KTAPE" capture -b "$BS" -r "$dir/repo" -t "$topic" --workers-group "bench-$3-$n-$topic" --admin-timeout 200ms \
			--no-progress --json >"$dir/w$i.json" 2>"$dir/w$i.err" &
		pids+=($!)
	done
	for ((i = 1; i <= n; i++)); do
		wait "${pids[$((i - 1))]}" || { echo "worker $i of $n failed:" >&2; tail -n 5 "$dir/w$i.err" >&2; exit 1; }
	done
	end=$(date +%s.%N)
	local got
	got=$(jq -s 'map(.records) | add' "$dir"/w[1-$n].json)
	if [ "$topic" = bench ] && [ "$got" != "$records" ]; then
		echo "$n workers captured $got of $records records" >&2
		exit 1
	fi
	awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}

run_plain() {
	local start end
	rm -rf "$dir/repo"
	sync
	start=$(date +%s.%N)
	"$KTAPE" capture -b "$BS" -r "$dir/repo" -t bench --admin-timeout 200ms --no-progress >/dev/null 2>"$dir/plain.err"
	end=$(date +%s.%N)
	awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}

declare -A best startup
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a < b) ? a : b }'; }
for r in $(seq "$runs"); do
	s=$(run_plain)
	best[plain]=$(min "$s" "${best[plain]:-}")
	echo "  run $r plain capture: ${s}s"
	for n in 1 2 4; do
		s=$(run_workers "$n" bench "$r")
		best[$n]=$(min "$s" "${best[$n]:-}")
		t=$(run_workers "$n" tiny "$r")
		startup[$n]=$(min "$t" "${startup[$n]:-}")
		echo "  run $r $n workers: ${s}s (start-up alone: ${t}s)"
	done
done

echo
printf '%-14s %9s %9s %9s %11s %10s %8s\n' capture seconds MB/s start-up "net seconds" "net MB/s" "x 1 net"
awk -v s="${best[plain]}" -v b="$bytes" 'BEGIN { printf "%-14s %9.2f %9.1f %9s %11s %10s %8s\n", "plain", s, b / 1e6 / s, "-", "-", "-", "-" }'
for n in 1 2 4; do
	awk -v n="$n" -v s="${best[$n]}" -v u="${startup[$n]}" -v b="$bytes" -v s1="${best[1]}" -v u1="${startup[1]}" 'BEGIN {
		net = s - u; net1 = s1 - u1
		printf "%-14s %9.2f %9.1f %9.2f %11.2f %10.1f %8.2f\n", n " worker" (n > 1 ? "s" : ""), s, b / 1e6 / s, u,
			net, b / 1e6 / net, net1 / net
	}'
done
echo "(seconds: best wall time of $runs runs, first worker started to last exited; start-up: the same"
echo " workers capturing one record per partition, mostly the consumer group's first join; net: the"
echo " difference; $(nproc) cpus shared by the mock broker and every worker)"
echo "loadavg at end: $(cat /proc/loadavg)"
