#!/usr/bin/env bash
# ktape restore --workers-group: two worker processes share the 12
# partitions of a snapshot through a Kafka consumer group over the target
# topics; the target then equals the source record for record (every
# record exactly once) and a consumer group's offsets are set for every
# partition.  Then, into a fresh cluster, one worker is SIGKILLed in the
# middle of a partition: the other takes its partitions over and resumes
# that one, a rerun of the killed worker finds everything done, and the
# target still equals the source exactly once.
. "$(dirname "$0")/lib.sh"
require_cmd kcat

start_sandbox -n 1 --topic orders:8 --topic audit:4
SRC=$BOOTSTRAP
REPO=$T/repo
"$KTAPE" gen -b "$SRC" -t orders -n 40000 --round-robin --seed 1 \
	--commit billing:orders:0:1000 --commit billing:orders:3:2000 >/dev/null
"$KTAPE" gen -b "$SRC" -t audit -n 20000 --round-robin --seed 2 >/dev/null
"$KTAPE" capture -b "$SRC" -r "$REPO" -t orders -t audit --group billing --admin-timeout 300ms \
	--no-progress 2>"$T/capture.err" || { cat "$T/capture.err" >&2; fail "capture failed"; }
SNAP=$(ls "$REPO/snapshots" | sed 's/\.json$//')
for t in orders audit; do
	kcat_dump "$t" >"$T/$t.src"
done

workers() { # COUNT LOGPREFIX [restore args...]
	local n=$1 prefix=$2 i
	shift 2
	pids=()
	for ((i = 1; i <= n; i++)); do
		"$KTAPE" restore -b "$BOOTSTRAP" -r "$REPO" -s "$SNAP" --workers-group restorers \
			--no-progress "$@" \
			>"$T/$prefix$i.out" 2>"$T/$prefix$i.err" &
		pids+=($!)
	done
}

compare_target() {
	local t
	for t in orders audit; do
		kcat_dump "$t" >"$T/$t.dst"
		expect_same "$T/$t.src" "$T/$t.dst"
	done
}

# ---- two workers --------------------------------------------------------------------
start_sandbox -n 1 --from-snapshot "$REPO"
expect_status 2 "$KTAPE" restore -b "$BOOTSTRAP" -r "$REPO" --workers-group restorers --partitioning key
workers 2 w --group billing
for i in 0 1; do
	wait "${pids[$i]}" || { cat "$T/w$((i + 1)).err" >&2; fail "worker $((i + 1)) failed"; }
done
done_by=$(grep -h 'restored (' "$T"/w*.err | wc -l)
[ "$done_by" -eq 12 ] || fail "expected 12 partitions restored once, the workers report $done_by"
for i in 1 2; do
	n=$(grep -c 'restored (' "$T/w$i.err" || true)
	[ "$n" -gt 0 ] || fail "worker $i restored no partition: the work was not shared"
done
pass "2 workers restored the 12 partitions ($(grep -c 'restored (' "$T/w1.err") and $(grep -c 'restored (' "$T/w2.err"))"
compare_target
pass "target equals source: every record exactly once"
kcat_group_starts billing orders >"$T/billing.starts"
grep -qx '0 1000' "$T/billing.starts" && grep -qx '3 2000' "$T/billing.starts" ||
	fail "group billing's offsets were not set on the target: $(cat "$T/billing.starts")"
pass "group offsets committed for the partitions they were captured for"

# ---- one worker killed in the middle of a partition -----------------------------------
start_sandbox -n 1 --from-snapshot "$REPO"
# A rate limit per partition restore, so that the kill lands inside one.
# Restore records of their own: the mock's clusters share one cluster id,
# so the first restore's records would otherwise name this cluster too.
STATE=$T/state2
workers 2 k --max-rate 4000 --state-dir "$STATE"
for _ in $(seq 300); do
	grep -q 'restored (' "$T/k1.err" && grep -q 'restoring .* into' "$T/k1.err" && break
	sleep 0.1
done
grep -q 'restored (' "$T/k1.err" || fail "worker 1 restored no partition within 30 s"
sleep 0.5
kill -KILL "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
note "killed worker 1 after $(grep -c 'restored (' "$T/k1.err") partitions"
wait "${pids[1]}" || { cat "$T/k2.err" >&2; fail "the surviving worker failed"; }
grep -q 'target partitions assigned' "$T/k2.err" || fail "the survivor was never assigned partitions"
# The partition the killed worker was in the middle of was resumed, not
# sent again: its restore found a prefix of it in the target.
grep -Eq 'records sent, [1-9][0-9]* already there' "$T/k2.err" ||
	fail "no partition was resumed mid-way: $(grep -h 'restored (' "$T/k2.err")"
"$KTAPE" restore -b "$BOOTSTRAP" -r "$REPO" -s "$SNAP" --workers-group restorers --no-progress \
	--state-dir "$STATE" >"$T/rerun.out" 2>"$T/rerun.err" || { cat "$T/rerun.err" >&2; fail "the rerun failed"; }
grep -q 'all 12 partitions restored' "$T/rerun.out" || fail "the rerun did not report completion: $(cat "$T/rerun.out")"
pass "the survivor took over the killed worker's partitions; a rerun finds all 12 restored"
compare_target
pass "target equals source after the kill: every record exactly once"
