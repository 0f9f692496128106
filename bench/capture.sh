#!/usr/bin/env bash
# bench/capture.sh - `ktape capture` against its baselines, on the same
# sandbox topic, in one run (bench/RESULTS.md, section "capture"):
#
#   bare       bench_capture_bare: librdkafka consumer that discards (ceiling)
#   kcat       kcat -C writing key, headers, timestamp and value to a file
#   none       ktape capture --compression none
#   zstd-1     ktape capture --compression zstd --level 1
#   zstd-3     ktape capture --compression zstd --level 3
#
# Each is a whole process timed from spawn to exit, with its peak RSS and
# CPU seconds (/usr/bin/time %M %U %S) and the CPU seconds the sandbox's
# brokers spent meanwhile (they share the machine's cores).  The phases are
# interleaved over --runs rounds and the best time of each is kept.  MB/s is record bytes (keys, values, headers)
# per second, MB = 10^6 bytes.
#
# Usage: bench/capture.sh BUILD_DIR [--partitions 64] [--mb-per-partition 16]
#                         [--runs 3] [--dir /tmp/kt-bench-capture]
# The mock keeps 5 MiB per partition, so the records are produced zstd-
# compressed by `ktape gen` (JSON-like, compressible); the bench refuses to
# run when the mock dropped any record.
set -euo pipefail

build=${1:?usage: bench/capture.sh BUILD_DIR [options]}
shift
parts=64 mbpp=16 runs=3 dir=/tmp/kt-bench-capture
. "$(dirname "$0")/lib.sh"
bench_parse_options "$@"
KTAPE=$(realpath "$build/ktape")
BARE=$(realpath "$build/bench/bench_capture_bare")
bench_prepare_dir

echo "ktape capture bench, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
bench_machine_line
echo "librdkafka: $("$KTAPE" version)"

bench_start_sandbox "$dir/bootstrap" -n 3 --topic "bench:$parts"

"$KTAPE" gen -b "$BS" -t bench --bytes "$((parts * mbpp))M" -n 100000000 --keys 100000 --size 200-1000 \
	--headers 2 -z zstd >"$dir/gen.json"
produced=$(jq -r .records "$dir/gen.json")
"$BARE" -b "$BS" -t bench >"$dir/check.out"
seen=$(sed -n 's/.*records=\([0-9]*\).*/\1/p' "$dir/check.out")
bytes=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' "$dir/check.out")
if [ "$produced" != "$seen" ]; then
	echo "the mock kept $seen of $produced records: lower --mb-per-partition" >&2
	exit 1
fi
echo "topic: bench, $parts partitions, $produced records, $bytes record bytes ($(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB), produced zstd-compressed"

declare -A best_s best_rss best_cpu best_bcpu
tck=$(getconf CLK_TCK)
sandbox_ticks() { # user+system clock ticks the sandbox used so far
	awk '{ print $14 + $15 }' "/proc/$sandbox_pid/stat"
}
run_phase() { # NAME CMD... ; records the best time, its RSS and CPU time, and the brokers' CPU time
	local name=$1 s rss u k t0 t1 bcpu
	shift
	sync
	t0=$(sandbox_ticks)
	/usr/bin/time -f '%e %M %U %S' -o "$dir/time" "$@" >"$dir/out.$name" 2>"$dir/err.$name" || {
		echo "$name failed:" >&2
		tail -n 5 "$dir/err.$name" >&2
		exit 1
	}
	t1=$(sandbox_ticks)
	read -r s rss u k <"$dir/time"
	bcpu=$(awk -v a="$t0" -v b="$t1" -v t="$tck" 'BEGIN { print (b - a) / t }')
	if [ -z "${best_s[$name]:-}" ] || awk -v a="$s" -v b="${best_s[$name]}" 'BEGIN { exit !(a < b) }'; then
		best_s[$name]=$s
		best_rss[$name]=$rss
		best_cpu[$name]=$(awk -v u="$u" -v k="$k" 'BEGIN { print u + k }')
		best_bcpu[$name]=$bcpu
	fi
	echo "  run $r $name: ${s}s, cpu $(awk -v u="$u" -v k="$k" 'BEGIN { print u + k }')s (brokers ${bcpu}s)," \
		"peak RSS $((rss / 1024)) MiB"
}
capture_phase() { # NAME CODEC LEVEL
	rm -rf "$dir/repo"
	run_phase "$1" "$KTAPE" capture -b "$BS" -r "$dir/repo" -t bench -z "$2" -l "$3" --admin-timeout 200ms \
		--no-progress --json
	local got
	got=$(jq -r .records "$dir/out.$1")
	[ "$got" = "$produced" ] || { echo "$1 captured $got of $produced records" >&2; exit 1; }
	stored[$1]=$(du -sb "$dir/repo/segments" | cut -f 1)
}
declare -A stored
for r in $(seq "$runs"); do
	run_phase bare "$BARE" -b "$BS" -t bench
	run_phase kcat sh -c "kcat -C -b '$BS' -t bench -o beginning -e -q -f '%k\t%h\t%T\t%s\n' \
		-X queued.min.messages=1000000 -X queued.max.messages.kbytes=1048576 >'$dir/kcat.out'"
	rm -f "$dir/kcat.out"
	capture_phase none none 1
	capture_phase zstd-1 zstd 1
	capture_phase zstd-3 zstd 3
done

echo
printf '%-8s %9s %9s %10s %8s %10s %9s %9s %9s %12s\n' phase seconds MB/s records/s "cpu s" "brokers s" "RSS MiB" \
	"x bare" "x kcat" "stored MB"
for name in bare kcat none zstd-1 zstd-3; do
	awk -v n="$name" -v s="${best_s[$name]}" -v rss="${best_rss[$name]}" -v b="$bytes" -v rec="$produced" \
		-v cpu="${best_cpu[$name]}" -v bcpu="${best_bcpu[$name]}" -v bare="${best_s[bare]}" -v kc="${best_s[kcat]}" \
		-v st="${stored[$name]:-}" 'BEGIN {
		printf "%-8s %9.2f %9.1f %10.0f %8.2f %10.2f %9.0f %9.2f %9.2f %12s\n", n, s, b / 1e6 / s, rec / s, cpu, bcpu,
			rss / 1024, bare / s, kc / s, st == "" ? "-" : sprintf("%.1f", st / 1e6)
	}'
done
echo "(seconds: best wall time of the runs; cpu s: user+system seconds of that run; brokers s: the sandbox's, same run)"
echo "targets: none >= 0.90 x bare; zstd-1 >= 2.00 x kcat; peak RSS <= 256 MiB"
echo "loadavg at end: $(cat /proc/loadavg)"
