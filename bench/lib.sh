# bench/lib.sh - the preamble the sandbox benches share, sourced (not run)
# after `set -euo pipefail` and after setting the defaults parts, mbpp, runs
# and dir:
#
#   bench_parse_options "$@"   the common options --partitions,
#                              --mb-per-partition, --runs and --dir
#   bench_machine_line         the machine the figures come from, and its
#                              load when the run starts
#   bench_prepare_dir          a fresh, empty $dir, removed at exit (kept
#                              when KT_BENCH_KEEP is set) with the sandbox
#                              of $sandbox_pid stopped
#   bench_start_sandbox FILE ARGS...
#                              starts `ktape sandbox ARGS...` in the
#                              background writing its bootstrap to FILE,
#                              waits for it and sets sandbox_pid and BS
#
# KTAPE must name the ktape binary.  The caller's EXIT trap stops
# $sandbox_pid, so the sandbox never outlives a failed run.

bench_parse_options() {
	while [ $# -gt 0 ]; do
		case $1 in
		--partitions) parts=$2; shift 2 ;;
		--mb-per-partition) mbpp=$2; shift 2 ;;
		--runs) runs=$2; shift 2 ;;
		--dir) dir=$2; shift 2 ;;
		*) echo "unknown option $1" >&2; exit 2 ;;
		esac
	done
}

bench_prepare_dir() {
	rm -rf "$dir"
	mkdir -p "$dir"
	sandbox_pid=
	trap bench_cleanup EXIT
}

bench_cleanup() {
	[ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null && wait "$sandbox_pid" 2>/dev/null
	[ -n "${KT_BENCH_KEEP:-}" ] || rm -rf "$dir"
}

bench_machine_line() {
	echo "machine: $(nproc) cpus, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)," \
		"$(uname -sr); loadavg at start: $(cat /proc/loadavg)"
}

bench_start_sandbox() {
	local file=$1

	shift
	"$KTAPE" sandbox --bootstrap-file "$file" "$@" >"$file.out" 2>&1 &
	sandbox_pid=$!
	for _ in $(seq 100); do [ -s "$file" ] && break; sleep 0.1; done
	if [ ! -s "$file" ]; then
		echo "the sandbox did not start within 10 s; its output:" >&2
		cat "$file.out" >&2
		exit 1
	fi
	BS=$(head -n 1 "$file")
}
