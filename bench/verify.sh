#!/usr/bin/env bash
# bench/verify.sh - `ktape verify` against `zstd -d -T1` on the same record
# bytes, in one run (bench/RESULTS.md, section "verify").
#
# A sandbox topic is filled with `ktape gen` and captured twice: with zstd
# (level 3, the default) into the repository that is verified, and with
# --compression none, whose segment files, concatenated, are the raw record
# bytes; those are compressed with `zstd -3 -T1` into one frame stream for
# the baseline.  Then, interleaved over --runs rounds (best kept):
#   verify   `ktape verify -r REPO` (every block checksum, decompression and
#            record structure, the manifest and index checks), timed from
#            spawn to exit; it runs in parallel across partitions.
#   zstd -d  `zstd -d -T1 -q -c raw.zst >/dev/null` (zstd's decompression is
#            single-threaded anyway).
# MB/s is raw record bytes (the repository's raw_bytes, the same bytes the
# baseline decompresses) per wall-clock second, MB = 10^6 bytes.  Inputs are
# in the page cache (written just before).
#
# Usage: bench/verify.sh BUILD_DIR [--partitions 32] [--mb-per-partition 8]
#                        [--runs 3] [--dir /tmp/kt-bench-verify]
# The mock keeps 5 MiB per partition, so records are produced compressed.
set -euo pipefail

build=${1:?usage: bench/verify.sh BUILD_DIR [options]}
shift
parts=32 mbpp=8 runs=3 dir=/tmp/kt-bench-verify
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_parse_options "$@"
KTAPE=$(realpath "$build/ktape")
bench_prepare_dir

echo "ktape verify bench, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
bench_machine_line
echo "zstd: $(zstd --version)"

bench_start_sandbox "$dir/bootstrap" -n 1 --topic "bench:$parts"
"$KTAPE" gen -b "$BS" -t bench --bytes "$((parts * mbpp))M" -n 100000000 --keys 100000 --size 200-1000 \
	--headers 2 -z zstd >"$dir/gen.json"
"$KTAPE" -q capture -b "$BS" -r "$dir/repo" -t bench --admin-timeout 500ms --no-progress >/dev/null
"$KTAPE" -q capture -b "$BS" -r "$dir/raw" -t bench --admin-timeout 500ms --no-progress -z none >/dev/null
kill "$sandbox_pid" && wait "$sandbox_pid" 2>/dev/null || true
sandbox_pid=

find "$dir/raw/segments" -name '*.kts' | sort | xargs cat >"$dir/raw.bin"
zstd -3 -T1 -q "$dir/raw.bin" -o "$dir/raw.zst"
"$KTAPE" verify -r "$dir/repo" --json >"$dir/v.json"
raw=$(jq -r .raw_bytes "$dir/v.json")
stored=$(jq -r .stored_bytes "$dir/v.json")
records=$(jq -r .records "$dir/v.json")
segments=$(jq -r .segments "$dir/v.json")
rawbin=$(stat -c %s "$dir/raw.bin")
echo "data: $records records, $segments segments in $parts partitions; raw $raw bytes, stored $stored bytes" \
	"(ratio $(awk -v a="$raw" -v b="$stored" 'BEGIN { printf "%.2f", a / b }')); raw.bin $rawbin bytes" \
	"(segments with codec none), raw.zst $(stat -c %s "$dir/raw.zst") bytes"

now() { date +%s%N; }
best_v= best_z= best_1=
for r in $(seq "$runs"); do
	t0=$(now)
	"$KTAPE" -q verify -r "$dir/repo" >/dev/null 2>&1
	t=$(($(now) - t0))
	[ -z "$best_v" ] || [ "$t" -lt "$best_v" ] && best_v=$t
	t0=$(now)
	"$KTAPE" -q verify -r "$dir/repo" --threads 1 >/dev/null 2>&1
	t=$(($(now) - t0))
	[ -z "$best_1" ] || [ "$t" -lt "$best_1" ] && best_1=$t
	t0=$(now)
	zstd -d -T1 -q -c "$dir/raw.zst" >/dev/null
	t=$(($(now) - t0))
	[ -z "$best_z" ] || [ "$t" -lt "$best_z" ] && best_z=$t
	echo "run $r: verify $(awk -v b="$raw" -v t="$best_v" 'BEGIN { printf "%.0f", b / (t / 1e3) }') MB/s," \
		"zstd -d $(awk -v b="$rawbin" -v t="$best_z" 'BEGIN { printf "%.0f", b / (t / 1e3) }') MB/s (best so far)"
done
awk -v rv="$raw" -v tv="$best_v" -v rz="$rawbin" -v tz="$best_z" -v t1="$best_1" -v n="$(nproc)" 'BEGIN {
	v = rv / (tv / 1e3); z = rz / (tz / 1e3)
	printf "%-34s %8.3f s %8.0f MB/s\n", "ktape verify (" n " threads)", tv / 1e9, v
	printf "%-34s %8.3f s %8.0f MB/s\n", "ktape verify --threads 1", t1 / 1e9, rv / (t1 / 1e3)
	printf "%-34s %8.3f s %8.0f MB/s\n", "zstd -d -T1", tz / 1e9, z
	printf "verify / zstd -d: %.2fx\n", v / z
}'
echo "loadavg at end: $(cat /proc/loadavg)"
