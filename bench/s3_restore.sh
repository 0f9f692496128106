#!/usr/bin/env bash
# bench/s3_restore.sh - `ktape restore` of one snapshot from object storage
# against the same snapshot on local disk, side by side in one run
# (bench/RESULTS.md, section "restore from object storage").
#
#   local   ktape restore -r DIR            (the repository directory)
#   s3      ktape restore -r s3://BUCKET/P  (the same files, byte for byte,
#           put into s3rver on loopback: ranged GETs over HTTP)
#
# The snapshot is captured once into a directory and its files are copied
# into the bucket, so both phases read identical segments.  Each phase is a
# whole process timed from spawn to exit with its peak RSS, restoring into
# its own fresh topic of a target sandbox started for the round; phases
# alternate over --runs rounds and the best time of each is kept.  MB/s is
# record bytes (keys, values, headers) per second, MB = 10^6 bytes.
#
# s3rver is a JavaScript process sharing the machine's cores with ktape and
# the sandbox, so the ratio measures ktape's S3 path plus a local server,
# not a real store's network; it is the cost of the HTTP path itself.
#
# With --latency-ms N the S3 phase goes through tests/integration/s3proxy.js,
# which delays every request by N ms, as a distant store would.
#
# Usage: bench/s3_restore.sh BUILD_DIR [--partitions 32] [--mb-per-partition 4]
#                            [--runs 2] [--dir /tmp/kt-bench-s3-restore]
#                            [--latency-ms 0]
# Needs node and s3rver (installed into BUILD_DIR/s3rver by the S3 tests).
set -euo pipefail

build=${1:?usage: bench/s3_restore.sh BUILD_DIR [options]}
shift
parts=32 mbpp=4 runs=2 dir=/tmp/kt-bench-s3-restore latency=0
. "$(dirname "$0")/lib.sh"
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--latency-ms) latency=$2; shift 2 ;;
	*) args+=("$1"); shift ;;
	esac
done
bench_parse_options ${args[@]+"${args[@]}"}
KTAPE=$(realpath "$build/ktape")
PROBE=$(realpath "$build/tests/integration/s3_probe")
rm -rf "$dir"
mkdir -p "$dir"

# tests/integration/s3lib.sh starts s3rver; it expects lib.sh's helpers.
T=$dir
KT_BUILD_ROOT=$(realpath "$build")
KT_SANDBOX_PIDS=()
note() { echo "# $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
wait_until() {
	local secs=$1
	shift
	for ((i = 0; i < secs * 10; i++)); do "$@" && return 0; sleep 0.1; done
	fail "timed out waiting for $*"
}
. "$(dirname "$0")/../tests/integration/s3lib.sh"

src_pid= dst_pid=
cleanup() {
	local rc=$?
	for p in $src_pid $dst_pid "${KT_SANDBOX_PIDS[@]}"; do { kill "$p" && wait "$p"; } 2>/dev/null || true; done
	rm -rf "$dir"
	exit "$rc"
}
trap cleanup EXIT

echo "ktape restore from object storage bench, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
bench_machine_line

BUCKET=ktape-bench
start_s3rver "$BUCKET"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$S3RVER_PORT" KTAPE_S3_PATH_STYLE=1
unset AWS_SESSION_TOKEN AWS_DEFAULT_REGION AWS_ENDPOINT_URL_S3
URL="s3://$BUCKET/bench"
if [ "$latency" -gt 0 ]; then
	start_s3proxy --latency-ms "$latency"
	s3_endpoint="http://127.0.0.1:$S3PROXY_PORT"
	echo "S3 phase through a proxy adding ${latency} ms to every request"
else
	s3_endpoint=$AWS_ENDPOINT_URL
fi
echo "s3rver $(node -e "console.log(require('$KT_BUILD_ROOT/s3rver/node_modules/s3rver/package.json').version)")" \
	"on 127.0.0.1:$S3RVER_PORT, node $(node --version)"

bench_start_sandbox "$dir/src.bootstrap" --topic "bench:$parts"
src_pid=$sandbox_pid
"$KTAPE" gen -b "$BS" -t bench --bytes "$((parts * mbpp))M" -n 100000000 --keys 100000 --size 200-1000 \
	--headers 2 --ts-span 10h -z zstd >"$dir/gen.json"
produced=$(jq -r .records "$dir/gen.json")
"$KTAPE" capture -b "$BS" -r "$dir/repo" -t bench --admin-timeout 200ms --no-progress --json >"$dir/capture.json"
[ "$(jq -r .records "$dir/capture.json")" = "$produced" ] ||
	{ echo "the capture holds $(jq -r .records "$dir/capture.json") of $produced records" >&2; exit 1; }
kill "$src_pid"; wait "$src_pid" 2>/dev/null || true; src_pid=
(cd "$dir/repo" && find . -type f \( -name '*.kts' -o -name '*.kti' -o -name '*.json' \) | sed 's|^\./||') |
	while read -r f; do "$PROBE" --path-style "$URL" put "$f" "$dir/repo/$f"; done
stored=$(jq -r .stored_bytes "$dir/capture.json")
echo "snapshot: $produced records in $parts partitions, $(jq -r .segments "$dir/capture.json") segments," \
	"$((stored / 1000000)) MB stored; copied into $URL"

declare -A best_s best_rss
run_phase() { # NAME CMD...
	local name=$1 s rss
	shift
	/usr/bin/time -f '%e %M' -o "$dir/time" "$@" >"$dir/out.$name" 2>"$dir/err.$name" || {
		echo "$name failed:" >&2
		tail -n 5 "$dir/err.$name" >&2
		exit 1
	}
	read -r s rss <"$dir/time"
	[ "$(jq -r .records_acked "$dir/out.$name")" = "$produced" ] ||
		{ echo "$name restored $(jq -r .records_acked "$dir/out.$name") of $produced" >&2; exit 1; }
	if [ -z "${best_s[$name]:-}" ] || awk -v a="$s" -v b="${best_s[$name]}" 'BEGIN { exit !(a < b) }'; then
		best_s[$name]=$s
		best_rss[$name]=$rss
	fi
	echo "  run $r $name: ${s}s, peak RSS $((rss / 1024)) MiB"
}
for r in $(seq "$runs"); do
	rm -f "$dir/dst.bootstrap"
	bench_start_sandbox "$dir/dst.bootstrap" --topic "local:$parts" --topic "s3:$parts"
	dst_pid=$sandbox_pid
	rm -rf "$dir/state"
	run_phase local "$KTAPE" restore -b "$BS" -r "$dir/repo" -t bench --map bench=local --no-progress --json \
		--state-dir "$dir/state"
	AWS_ENDPOINT_URL=$s3_endpoint run_phase s3 "$KTAPE" restore -b "$BS" -r "$URL" -t bench --map bench=s3 \
		--no-progress --json --state-dir "$dir/state"
	bytes=$(jq -r .bytes_sent "$dir/out.local")
	kill "$dst_pid"; wait "$dst_pid" 2>/dev/null || true; dst_pid=
done

echo
printf '%-6s %9s %9s %10s %9s\n' phase seconds MB/s records/s "RSS MiB"
for name in local s3; do
	awk -v n="$name" -v s="${best_s[$name]}" -v rss="${best_rss[$name]}" -v b="$bytes" -v rec="$produced" 'BEGIN {
		printf "%-6s %9.2f %9.1f %10.0f %9.0f\n", n, s, b / 1e6 / s, rec / s, rss / 1024
	}'
done
awk -v l="${best_s[local]}" -v s="${best_s[s3]}" 'BEGIN {
	printf "s3 / local throughput: %.2fx\n", l / s
}'
echo "loadavg at end: $(cat /proc/loadavg)"
