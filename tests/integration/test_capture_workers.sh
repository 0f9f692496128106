#!/usr/bin/env bash
# ktape capture --workers-group: three worker processes share one snapshot
# of 12 partitions through a Kafka consumer group.  The snapshot is
# committed exactly once, holds every record exactly once (ktape cat equals
# kcat), verifies, and its plan is cleaned up.  Then a second, incremental
# snapshot with one worker SIGKILLed mid-way: its partitions move to the
# others, which continue from its last recorded segment, and the snapshot
# is still complete, exactly once.  Also: a plain capture refuses while a
# plan is live, and --workers-group refuses --follow.
. "$(dirname "$0")/lib.sh"
require_cmd kcat jq

start_sandbox -n 1 --topic orders:8 --topic audit:4
REPO=$T/repo
"$KTAPE" gen -b "$BOOTSTRAP" -t orders -n 40000 --round-robin --seed 1 >/dev/null
"$KTAPE" gen -b "$BOOTSTRAP" -t audit -n 20000 --round-robin --seed 2 >/dev/null

# Small segments, so that a worker records many and a kill lands between
# records; a short session timeout, so that a dead worker's partitions
# move within seconds.
# The worker's arguments; "$KTAPE" -v "${args[@]}" logs each recorded
# segment.  Background workers are started as the ktape process itself
# (not a shell function), so that $! is the process to kill.
args=(capture -b "$BOOTSTRAP" -r "$REPO" -t orders -t audit --workers-group backup
	--admin-timeout 300ms --no-progress --segment-size 64K
	-X session.timeout.ms=6000 -X heartbeat.interval.ms=500)
worker() { "$KTAPE" "${args[@]}" "$@"; }

compare() {
	local t
	for t in orders audit; do
		kcat_dump "$t" >"$T/$t.kcat"
		"$KTAPE" cat -r "$REPO" -t "$t" >"$T/$t.ktape" || fail "ktape cat -t $t failed"
		expect_same "$T/$t.kcat" "$T/$t.ktape"
	done
}

snapshots() { find "$REPO/snapshots" -name '*.json' | wc -l; }
plans_left() { find "$REPO/plans" -type f 2>/dev/null | wc -l; }

expect_status 2 worker --follow

# ---- three workers, one snapshot ------------------------------------------------
pids=()
for i in 1 2 3; do
	"$KTAPE" "${args[@]}" --json >"$T/w$i.json" 2>"$T/w$i.err" &
	pids+=($!)
done
for i in 0 1 2; do
	wait "${pids[$i]}" || { cat "$T/w$((i + 1)).err" >&2; fail "worker $((i + 1)) failed"; }
done
[ "$(snapshots)" -eq 1 ] || fail "expected one snapshot, found $(snapshots)"
[ "$(plans_left)" -eq 0 ] || fail "the plan was not cleaned up: $(find "$REPO/plans" -type f)"
[ "$(grep -l 'committed full snapshot' "$T"/w*.err | wc -l)" -eq 1 ] ||
	fail "not exactly one worker committed: $(grep -h committed "$T"/w*.err)"
first=$(jq -r .snapshot "$T/w1.json")
for i in 2 3; do
	[ "$(jq -r .snapshot "$T/w$i.json")" = "$first" ] || fail "workers report different snapshots"
done
sum=$(jq -s 'map(.records) | add' "$T"/w*.json)
[ "$sum" -eq 60000 ] || fail "the workers captured $sum records together, not 60000"
busy=$(for i in 1 2 3; do jq -r .records "$T/w$i.json"; done | awk '$1 > 0' | wc -l)
[ "$busy" -ge 2 ] || fail "the work was not shared: $(jq -c .records "$T"/w*.json)"
pass "3 workers committed one full snapshot $first (records per worker: $(jq -r .records "$T"/w*.json | xargs))"
compare
pass "ktape cat equals kcat for all 12 partitions"
"$KTAPE" verify -r "$REPO" >/dev/null || fail "ktape verify failed"
pass "ktape verify passes"

# ---- a worker killed mid-way -------------------------------------------------------
# Batches of 20 records (the mock serves one batch per partition per fetch)
# and slow fetches, so that the capture is still running when the kill
# comes.
small=(-X linger.ms=0 -X batch.num.messages=20)
"$KTAPE" gen -b "$BOOTSTRAP" -t orders -n 40000 --round-robin --seed 3 "${small[@]}" >/dev/null
"$KTAPE" gen -b "$BOOTSTRAP" -t audit -n 20000 --round-robin --seed 4 "${small[@]}" >/dev/null
sandbox_ctl broker rtt 1 30 >/dev/null
pids=()
for i in 1 2 3; do
	"$KTAPE" -v "${args[@]}" >"$T/k$i.json" 2>"$T/k$i.err" &
	pids+=($!)
done
# Kill the worker that has recorded a segment, once some are recorded.
victim=
for _ in $(seq 300); do
	victim=$(grep -l 'recorded segments/' "$T"/k*.err 2>/dev/null | head -n 1 || true)
	[ -n "$victim" ] && break
	sleep 0.1
done
[ -n "$victim" ] || fail "no worker recorded a segment within 30 s"
victim_n=${victim##*/k}
victim_n=${victim_n%.err}
kill -KILL "${pids[$((victim_n - 1))]}"
wait "${pids[$((victim_n - 1))]}" 2>/dev/null || true
recorded=$(grep -c 'recorded segments/' "$victim" || true)
note "killed worker $victim_n after it recorded $recorded segments"
sandbox_ctl broker rtt 1 0 >/dev/null
for i in 1 2 3; do
	[ "$i" -eq "$victim_n" ] && continue
	wait "${pids[$((i - 1))]}" || { cat "$T/k$i.err" >&2; fail "surviving worker $i failed"; }
done
[ "$(snapshots)" -eq 2 ] || fail "expected two snapshots, found $(snapshots)"
[ "$(plans_left)" -eq 0 ] || fail "the plan was not cleaned up: $(find "$REPO/plans" -type f)"
second=$(ls "$REPO/snapshots" | sort | tail -n 1)
second=${second%.json}
[ "$(jq -r .kind "$REPO/snapshots/$second.json")" = incremental ] || fail "the second snapshot is not incremental"
[ "$(jq -r .parent "$REPO/snapshots/$second.json")" = "$first" ] || fail "the second snapshot does not continue the first"
[ "$(jq '[.topics[].partitions[] | select(.complete | not)] | length' "$REPO/snapshots/$second.json")" -eq 0 ] ||
	fail "the second snapshot has incomplete partitions"
# The survivors were assigned the victim's partitions where its records end.
moved=$(grep -h 'assigned .* at offset' "$T"/k*.err | grep -vc 'at offset 5000$' || true)
[ "$moved" -gt 0 ] || fail "no partition moved to a survivor past its start: $(grep -h 'assigned .* at offset' "$T"/k*.err)"
pass "after SIGKILL of worker $victim_n the others committed incremental snapshot $second"
compare
pass "ktape cat equals kcat: every record exactly once after the kill"
"$KTAPE" verify -r "$REPO" >/dev/null || fail "ktape verify failed after the kill"
pass "ktape verify passes after the kill"

# ---- a plain capture waits for a live plan ------------------------------------------
# A plan left by a group whose workers all died stays live until they rerun.
"$KTAPE" gen -b "$BOOTSTRAP" -t orders -n 4000 --round-robin --seed 5 "${small[@]}" >/dev/null
sandbox_ctl broker rtt 1 200 >/dev/null
"$KTAPE" "${args[@]}" >"$T/p1.json" 2>"$T/p1.err" &
pid=$!
wait_until 30 grep -q 'partitions assigned' "$T/p1.err"
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
sandbox_ctl broker rtt 1 0 >/dev/null
expect_status 1 "$KTAPE" capture -b "$BOOTSTRAP" -r "$REPO" -t orders --no-progress --admin-timeout 300ms 2>"$T/plain.err"
grep -q "workers group 'backup' is capturing" "$T/plain.err" || fail "plain capture did not name the live plan: $(cat "$T/plain.err")"
pass "a plain capture refuses while a workers plan is live"
worker >"$T/p2.json" 2>"$T/p2.err" || { cat "$T/p2.err" >&2; fail "rerunning a worker did not finish the plan"; }
[ "$(plans_left)" -eq 0 ] || fail "the plan was not cleaned up: $(find "$REPO/plans" -type f)"
compare
pass "one worker rerun finished the abandoned plan"

# ---- records lost to retention are reported by the workers too ----------------------
# 8 MB into one partition after a snapshot: the sandbox keeps 5 MiB, so the
# log start passes the snapshot's end and the next workers' snapshot
# records the hole; the worker exits 4 and says how much, as a plain
# capture does.
start_sandbox -n 1 --topic ret:1
RREPO=$T/retrepo
rargs=(capture -b "$BOOTSTRAP" -r "$RREPO" -t ret --workers-group retention --admin-timeout 300ms
	--no-progress --json -X session.timeout.ms=6000 -X heartbeat.interval.ms=500)
"$KTAPE" gen -b "$BOOTSTRAP" -t ret -n 100 --seed 7 >/dev/null
"$KTAPE" "${rargs[@]}" >"$T/r1.json" 2>"$T/r1.err" || { cat "$T/r1.err" >&2; fail "the first retention capture failed"; }
"$KTAPE" gen -b "$BOOTSTRAP" -t ret -n 4000 --size 2000 --compressibility 0 --seed 8 >/dev/null
rc=0
"$KTAPE" "${rargs[@]}" >"$T/r2.json" 2>"$T/r2.err" || rc=$?
[ "$rc" -eq 4 ] || fail "a workers capture with a retention gap exited $rc, not 4: $(cat "$T/r2.err")"
jq -e '.exit_code == 4 and .gaps == 1 and .gap_offsets > 0' "$T/r2.json" >/dev/null || fail "summary: $(cat "$T/r2.json")"
grep -q "deleted by retention" "$T/r2.err" || fail "no gap message: $(cat "$T/r2.err")"
snap=$(jq -r .snapshot "$T/r2.json")
[ "$(jq '[.topics[].partitions[].gaps[]] | length' "$RREPO/snapshots/$snap.json")" -eq 1 ] || fail "the manifest does not record the gap"
pass "a retention gap: the worker exits 4 with $(jq .gap_offsets "$T/r2.json") offsets lost, recorded in the manifest"
