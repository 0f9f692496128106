# tests/integration/lib.sh - shared helpers of the integration tests.
#
# Source it first thing in a test:
#     . "$(dirname "$0")/lib.sh"
# It sets `set -euo pipefail`, makes a private temporary directory $T, and
# installs a trap that, whatever happens (failure, error, signal), kills
# every sandbox this test started by its own PID and removes $T (kept, and
# its path printed, when the test fails or KT_KEEP_TMP=1).
#
# Environment (meson's integration_env sets these):
#   KTAPE            the ktape binary
#   DUMPCMP          the dumpcmp binary (tests/integration/dumpcmp.c)
#   KT_SOURCE_ROOT   the source tree
#
# Shell API:
#   start_sandbox [ktape sandbox args...]
#       starts `ktape sandbox` in the background with random ports and a
#       control socket, waits until it is ready, and sets
#       BOOTSTRAP (host:port,...), SANDBOX_PID, SANDBOX_CTL (socket path).
#       Example: start_sandbox -n 3 --topic orders:4 --topic audit:2:1
#   stop_sandbox [PID]
#       SIGTERM, waits, and fails unless the sandbox exited 0.
#   sandbox_ctl COMMAND...
#       sends one control command (e.g. `sandbox_ctl broker down 2`); prints
#       the answer; returns 0 on "ok", 1 on "error: ...".
#   kcat_dump TOPIC...
#       kcat -C -J of every partition of the topics from the beginning to the
#       current end, sorted by topic, partition, offset, on stdout.
#   kcat_group_starts GROUP TOPIC
#       joins GROUP with kcat (about 3 s on the mock), reads without
#       committing, and prints "PARTITION OFFSET" for each partition that
#       has records at or after the group's committed offset: the first
#       offset the group would read, i.e. its committed offset.  Partitions
#       the group has fully consumed print nothing.  Partitions without a
#       commit start at the earliest offset.
#   kcat_produce TOPIC [kcat -P args...]
#       kcat -P -b $BOOTSTRAP -t TOPIC with the given args (stdin as input).
#   dumpcmp [options] LEFT RIGHT
#       runs $DUMPCMP (see `dumpcmp --help`); 0 equal, 1 different.
#   expect_same [dumpcmp options] LEFT RIGHT
#       dumpcmp, and fail with its first difference when they differ.
#   fail MESSAGE...   prints "FAIL: ..." and ends the test with status 1.
#   pass MESSAGE...   prints "ok: ..." (one line per passed check).
#   note MESSAGE...   prints "# ..." for context.
#   skip MESSAGE...   ends the test as skipped (meson's status 77).
#   require_cmd CMD...  skips the test when a command is missing.
#   expect_status CODE CMD...  runs CMD and fails unless it exits with CODE.
#   wait_until SECONDS CMD...  retries CMD every 0.1 s until it succeeds or
#       SECONDS pass (then fails).
#   $T                the test's temporary directory.
#   $KT_TEST_NAME     the test's name (script basename without .sh).

set -euo pipefail

: "${KTAPE:?KTAPE must name the ktape binary (meson test sets it)}"
: "${KT_SOURCE_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${DUMPCMP:=${KT_BUILD_ROOT:-$(dirname "$KTAPE")}/tests/integration/dumpcmp}"

KT_TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/kt-${KT_TEST_NAME}.XXXXXX")
KT_SANDBOX_PIDS=()
KT_SANDBOX_SEQ=0
KT_FAILED=0
BOOTSTRAP=
SANDBOX_PID=
SANDBOX_CTL=

# True while pid runs; a process that exited but was not reaped yet (a
# zombie) counts as gone, which kill -0 alone would not say.
# /proc rather than ps(1), which minimal CI images may lack.
_kt_alive() {
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st:0:1}" != Z ]
}

_kt_cleanup() {
	local rc=$?
	local pid
	set +e
	for pid in "${KT_SANDBOX_PIDS[@]}"; do
		if _kt_alive "$pid"; then
			kill -TERM "$pid" 2>/dev/null
			# A sandbox that ignores SIGTERM for 5 s is killed hard.
			for _ in $(seq 50); do
				_kt_alive "$pid" || break
				sleep 0.1
			done
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	done
	if [ "$rc" -ne 0 ] || [ "$KT_FAILED" -ne 0 ] || [ "${KT_KEEP_TMP:-0}" = 1 ]; then
		echo "# temporary files kept in $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap _kt_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	KT_FAILED=1
	echo "FAIL: $*" >&2
	exit 1
}

pass() {
	echo "ok: $*"
}

note() {
	echo "# $*"
}

skip() {
	echo "SKIP: $*"
	exit 77
}

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"
	done
}

expect_status() {
	local want=$1 got=0
	shift
	"$@" || got=$?
	[ "$got" -eq "$want" ] || fail "expected exit $want, got $got from: $*"
}

wait_until() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	fail "timed out after ${secs}s waiting for: $*"
}

start_sandbox() {
	local n=$((++KT_SANDBOX_SEQ))
	local bs="$T/sandbox.$n.bootstrap" ctl="$T/sandbox.$n.ctl"
	local i pid

	"$KTAPE" sandbox --bootstrap-file "$bs" --control "$ctl" "$@" \
		>"$T/sandbox.$n.out" 2>"$T/sandbox.$n.err" </dev/null &
	pid=$!
	KT_SANDBOX_PIDS+=("$pid")
	for ((i = 0; i < 300; i++)); do
		[ -s "$bs" ] && break
		if ! _kt_alive "$pid"; then
			cat "$T/sandbox.$n.err" >&2
			fail "ktape sandbox $* exited before it was ready"
		fi
		sleep 0.05
	done
	[ -s "$bs" ] || fail "ktape sandbox $* was not ready after 15 s"
	BOOTSTRAP=$(head -n 1 "$bs")
	SANDBOX_PID=$pid
	SANDBOX_CTL=$ctl
	note "sandbox $pid at $BOOTSTRAP"
}

stop_sandbox() {
	local pid=${1:-$SANDBOX_PID} rc=0
	kill -TERM "$pid" 2>/dev/null || fail "sandbox $pid is not running"
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ] || fail "sandbox $pid exited with $rc after SIGTERM"
}

sandbox_ctl() {
	"$KTAPE" sandbox ctl --control "$SANDBOX_CTL" "$@"
}

kcat_produce() {
	local topic=$1
	shift
	kcat -P -b "$BOOTSTRAP" -t "$topic" "$@"
}

# Lines of kcat -J start with {"topic":"T","partition":P,"offset":O; topic
# names cannot hold quotes or tabs and kcat escapes control bytes, so a tab
# separated sort key in front of each line sorts them exactly.
kcat_dump() {
	local topic raw
	raw=$(mktemp "$T/kcat_dump.XXXXXX")
	for topic in "$@"; do
		kcat -C -b "$BOOTSTRAP" -t "$topic" -J -e -q -X fetch.wait.max.ms=50 \
			>>"$raw" 2>"$raw.err" || fail "kcat could not read topic $topic: $(cat "$raw.err")"
	done
	sed -E 's/^\{"topic":"([^"]*)","partition":([0-9]+),"offset":([0-9]+),/\1\t\2\t\3\t&/' "$raw" |
		LC_ALL=C sort -t "$(printf '\t')" -k1,1 -k2,2n -k3,3n | cut -f 4-
	rm -f "$raw" "$raw.err"
}

kcat_group_starts() {
	local group=$1 topic=$2
	timeout 60 kcat -b "$BOOTSTRAP" -G "$group" -e -J -q -X auto.offset.reset=earliest \
		-X enable.auto.commit=false "$topic" 2>>"$T/kcat_group.err" |
		grep -o '"partition":[0-9]*,"offset":[0-9]*' |
		sed -E 's/"partition":([0-9]+),"offset":([0-9]+)/\1 \2/' |
		sort -k1,1n -k2,2n | awk '!seen[$1]++'
}

dumpcmp() {
	"$DUMPCMP" "$@"
}

expect_same() {
	local out rc=0
	out=$("$DUMPCMP" "$@") || rc=$?
	[ "$rc" -eq 0 ] || fail "dumps differ ($*): $out"
	pass "same records: ${out#equal: }"
}
