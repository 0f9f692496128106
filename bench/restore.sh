#!/usr/bin/env bash
# bench/restore.sh - `ktape restore` against its baselines, on the same
# records, in one run (bench/RESULTS.md, section "restore"):
#
#   bare     bench_restore_bare: a librdkafka producer sending the same
#            records (partition, key, value, headers, timestamp) from a
#            memory-mapped file with ktape's producer settings (ceiling)
#   kcat     kcat -P -K '\t' -l from a file of key<TAB>value lines, with
#            the same producer settings (keys and values only)
#   ktape    ktape restore of the whole snapshot
#   window   ktape restore --from-time/--to-time of a 1% time window
#
# Each phase is a whole process timed from spawn to exit, with its peak RSS
# and CPU seconds (/usr/bin/time %M %U %S) and the CPU seconds the target
# sandbox's brokers spent meanwhile (they share the machine's cores, so a
# CPU-bound phase is bounded by the sum), writing into its own fresh topic
# of a target sandbox started for the round.  Phases are interleaved over
# --runs rounds and the best time of each is kept.  MB/s is record bytes
# (keys, values, headers) per second, MB = 10^6 bytes.
#
# Usage: bench/restore.sh BUILD_DIR [--partitions 64] [--mb-per-partition 3]
#                         [--runs 3] [--dir /tmp/kt-bench-restore]
# The mock keeps 5 MiB per partition and the target receives the records
# uncompressed, so keep --mb-per-partition at 4 or less.
set -euo pipefail

build=${1:?usage: bench/restore.sh BUILD_DIR [options]}
shift
parts=64 mbpp=3 runs=3 dir=/tmp/kt-bench-restore
. "$(dirname "$0")/lib.sh"
bench_parse_options "$@"
KTAPE=$(realpath "$build/ktape")
BARE=$(realpath "$build/bench/bench_restore_bare")
rm -rf "$dir"
mkdir -p "$dir"
src_pid= dst_pid=
cleanup() {
	for p in $src_pid $dst_pid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$dir"
}
trap cleanup EXIT

start_sandbox() { # BOOTSTRAP_FILE ARGS... ; prints the pid
	"$KTAPE" sandbox -n 3 --bootstrap-file "$1" "${@:2}" >/dev/null 2>&1 &
	echo $!
}
wait_file() { for _ in $(seq 150); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "no $1" >&2; exit 1; }

echo "ktape restore bench, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
bench_machine_line
echo "librdkafka: $("$KTAPE" version | tr '\n' ' ')"

src_pid=$(start_sandbox "$dir/src.bootstrap" --topic "bench:$parts")
wait_file "$dir/src.bootstrap"
SRC=$(head -n 1 "$dir/src.bootstrap")
"$KTAPE" gen -b "$SRC" -t bench --bytes "$((parts * mbpp))M" -n 100000000 --keys 100000 --size 200-1000 \
	--headers 2 --ts-span 10h -z zstd >"$dir/gen.json"
produced=$(jq -r .records "$dir/gen.json")
"$KTAPE" capture -b "$SRC" -r "$dir/repo" -t bench --admin-timeout 200ms --no-progress --json >"$dir/capture.json"
[ "$(jq -r .records "$dir/capture.json")" = "$produced" ] || { echo "the capture holds $(jq -r .records "$dir/capture.json") of $produced records" >&2; exit 1; }
kill "$src_pid"; wait "$src_pid" 2>/dev/null || true; src_pid=
"$BARE" --export "$dir/repo" bench "$dir/records.bin" "$dir/kcat.txt" >/dev/null
manifest=$(ls "$dir"/repo/snapshots/*.json | tail -n 1)
read -r tmin tmax < <(jq -r '[.topics[0].partitions[] | .min_ts] as $a | [.topics[0].partitions[] | .max_ts] as $b | "\($a | min) \($b | max)"' "$manifest")
wfrom=$((tmin + (tmax - tmin) * 495 / 1000))
wto=$((tmin + (tmax - tmin) * 505 / 1000))
echo "topic: bench, $parts partitions, $produced records, timestamps over $(((tmax - tmin) / 1000)) s; window [$wfrom, $wto) is 1% of the span"

# The settings ktape restore and bench_restore_bare use, so that kcat gets
# them too (the bench's rule: the same producer settings for all).
PRODUCER_X=(-X enable.idempotence=true -X acks=all -X compression.type=lz4 -X linger.ms=5 -X batch.num.messages=10000
	-X queue.buffering.max.kbytes=65536 -X queue.buffering.max.messages=200000)
declare -A best_s best_rss best_cpu best_bcpu
tck=$(getconf CLK_TCK)
sandbox_ticks() { # PID: user+system clock ticks the target sandbox used so far
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}
run_phase() { # NAME CMD... ; records the best time, its RSS, its CPU and the brokers' CPU
	local name=$1 s rss u k t0 t1 w0 w1 cpu bcpu
	shift
	sync
	t0=$(sandbox_ticks "$dst_pid")
	w0=$EPOCHREALTIME
	/usr/bin/time -f '%e %M %U %S' -o "$dir/time" "$@" >"$dir/out.$name" 2>"$dir/err.$name" || {
		echo "$name failed:" >&2
		tail -n 5 "$dir/err.$name" >&2
		exit 1
	}
	w1=$EPOCHREALTIME
	t1=$(sandbox_ticks "$dst_pid")
	read -r _ rss u k <"$dir/time"
	# Wall time to the millisecond (time's %e has 10 ms steps, a third of
	# a window restore), from spawn to exit of time(1) and its child.
	s=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.3f", b - a }')
	cpu=$(awk -v u="$u" -v k="$k" 'BEGIN { print u + k }')
	bcpu=$(awk -v a="$t0" -v b="$t1" -v t="$tck" 'BEGIN { print (b - a) / t }')
	if [ -z "${best_s[$name]:-}" ] || awk -v a="$s" -v b="${best_s[$name]}" 'BEGIN { exit !(a < b) }'; then
		best_s[$name]=$s
		best_rss[$name]=$rss
		best_cpu[$name]=$cpu
		best_bcpu[$name]=$bcpu
	fi
	echo "  run $r $name: ${s}s, cpu ${cpu}s (brokers ${bcpu}s), peak RSS $((rss / 1024)) MiB"
}
for r in $(seq "$runs"); do
	rm -f "$dir/dst.bootstrap"
	dst_pid=$(start_sandbox "$dir/dst.bootstrap" --topic "bare:$parts" --topic "kcat:$parts" \
		--topic "ktape:$parts" --topic "window:$parts")
	wait_file "$dir/dst.bootstrap"
	DST=$(head -n 1 "$dir/dst.bootstrap")
	run_phase bare "$BARE" -b "$DST" -t bare "$dir/records.bin"
	bytes=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' "$dir/out.bare")
	run_phase kcat kcat -P -b "$DST" -t kcat -K '\t' -l "${PRODUCER_X[@]}" "$dir/kcat.txt"
	run_phase ktape "$KTAPE" restore -b "$DST" -r "$dir/repo" -t bench --map bench=ktape --no-progress --json
	[ "$(jq -r .records_acked "$dir/out.ktape")" = "$produced" ] || { echo "ktape restored $(jq -r .records_acked "$dir/out.ktape") of $produced" >&2; exit 1; }
	run_phase window "$KTAPE" restore -b "$DST" -r "$dir/repo" -t bench --map bench=window \
		--from-time "$wfrom" --to-time "$wto" --no-progress --json
	wrec=$(jq -r .records_acked "$dir/out.window")
	wblocks="$(jq -r '"\(.blocks_read) of \(.blocks_total)"' "$dir/out.window")"
	kill "$dst_pid"; wait "$dst_pid" 2>/dev/null || true; dst_pid=
done

echo
printf '%-8s %9s %9s %10s %8s %10s %9s %9s %9s\n' phase seconds MB/s records/s "cpu s" "brokers s" "RSS MiB" "x bare" \
	"x kcat"
for name in bare kcat ktape; do
	awk -v n="$name" -v s="${best_s[$name]}" -v rss="${best_rss[$name]}" -v b="$bytes" -v rec="$produced" \
		-v cpu="${best_cpu[$name]}" -v bcpu="${best_bcpu[$name]}" -v bare="${best_s[bare]}" -v kc="${best_s[kcat]}" 'BEGIN {
		printf "%-8s %9.3f %9.1f %10.0f %8.2f %10.2f %9.0f %9.2f %9.2f\n", n, s, b / 1e6 / s, rec / s, cpu, bcpu,
			rss / 1024, bare / s, kc / s
	}'
done
awk -v s="${best_s[window]}" -v rss="${best_rss[window]}" -v full="${best_s[ktape]}" -v rec="$wrec" -v bl="$wblocks" 'BEGIN {
	printf "window   %9.3f s, %.1f%% of the full restore, %d records, blocks read %s, peak RSS %.0f MiB\n", s, 100 * s / full, rec, bl, rss / 1024
}'
echo "(kcat sends keys and values only, partitioned by key; bare and ktape also send headers, timestamps and source partitions)"
echo "(seconds: best wall time of the runs; cpu s: user+system seconds of that run; brokers s: the target sandbox's, same run)"
echo "targets: ktape >= 0.90 x bare; ktape >= 1.50 x kcat; window <= 5% of the full restore; peak RSS <= 256 MiB"
echo "loadavg at end: $(cat /proc/loadavg)"
