#!/usr/bin/env bash
# Trouble during a capture: a broker going down and up and leaders moving
# are ridden out; SIGINT commits a partial snapshot (exit 5) that the next
# run continues without loss or duplicates; kill -9 leaves earlier snapshots intact and its stale
# lock is taken over; a second capture into a locked repository is refused;
# unreachable brokers fail clearly within --timeout.
. "$(dirname "$0")/lib.sh"
require_cmd kcat jq

start_sandbox -n 3 --topic down:3 --topic sig:3 --topic nine:3

# Many small batches: the mock returns one batch per partition per fetch,
# so with a round-trip delay a capture takes long enough to be disturbed.
produce_batches() {
	seq 1 "$2" | sed 's/^/record-/' | kcat_produce "$1" -X batch.num.messages=40 -X linger.ms=0
}
slow() {
	local b
	for b in 1 2 3; do sandbox_ctl broker rtt "$b" "$1" >/dev/null; done
}
capture() {
	local repo=$1
	shift
	"$KTAPE" capture -b "$BOOTSTRAP" -r "$repo" --admin-timeout 200ms --no-progress "$@"
}
# In the background, exec so that $! is ktape itself (signals reach it).
capture_bg() {
	local repo=$1
	shift
	(exec "$KTAPE" -v capture -b "$BOOTSTRAP" -r "$repo" --admin-timeout 200ms --no-progress "$@") &
	cap=$!
}
same_as_kafka() {
	kcat_dump "$1" >"$T/$1.kcat"
	"$KTAPE" cat -r "$2" -t "$1" >"$T/$1.ktape" || fail "ktape cat -t $1 failed"
	expect_same "$T/$1.kcat" "$T/$1.ktape"
}
wait_for_records() { # LOG: records have begun to arrive
	wait_until 20 grep -q 'started at offset' "$1"
}

# ---- broker down and up during a capture ----------------------------------
produce_batches down 6000
slow 30
capture_bg "$T/r-down" -t down >"$T/down.out" 2>"$T/down.err"
sleep 0.7
sandbox_ctl broker down 2 >/dev/null
sleep 2
sandbox_ctl broker up 2 >/dev/null
# And a leader moves mid-capture.
sandbox_ctl leader down 0 3 >/dev/null
sandbox_ctl leader down 1 1 >/dev/null
sleep 0.5
slow 0
rc=0
wait "$cap" || rc=$?
[ "$rc" -eq 0 ] || fail "capture across a broker outage exited $rc: $(tail -n 5 "$T/down.err")"
same_as_kafka down "$T/r-down"
pass "a broker down and up and leaders moving during the capture cost no record"

# ---- SIGINT: a partial snapshot, continued by the next run ----------------
produce_batches sig 9000
slow 60
capture_bg "$T/r-sig" -t sig >"$T/sig.out" 2>"$T/sig.err"
wait_for_records "$T/sig.err"
kill -INT "$cap"
rc=0
wait "$cap" || rc=$?
[ "$rc" -eq 5 ] || fail "SIGINT: exit $rc, expected 5: $(tail -n 5 "$T/sig.err")"
manifest=$(ls "$T/r-sig"/snapshots/*.json | tail -n 1)
jq -e '.kind == "partial" and ([.topics[].partitions[] | select(.complete | not)] | length > 0)' \
	"$manifest" >/dev/null || fail "no partial snapshot after SIGINT: $(jq -c '{kind, p: [.topics[].partitions[] | {end_offset, complete}]}' "$manifest")"
kept=$(jq '[.topics[].partitions[].records] | add' "$manifest")
pass "SIGINT committed a partial snapshot of $kept records, exit 5"
slow 0
capture "$T/r-sig" -t sig --json >"$T/sig2.json" 2>"$T/sig2.err" || fail "capture after SIGINT failed: $(cat "$T/sig2.err")"
[ "$(jq -r .records "$T/sig2.json")" -eq $((9000 - kept)) ] || fail "the rerun captured $(jq -r .records "$T/sig2.json"), expected $((9000 - kept))"
same_as_kafka sig "$T/r-sig"
pass "the next capture continued it: no loss, no duplicates"

# ---- kill -9, the lock, and earlier snapshots ---------------------------------
seq 1 100 | kcat_produce nine
capture "$T/r-nine" -t nine 2>"$T/nine0.err" || fail "first capture failed: $(cat "$T/nine0.err")"
produce_batches nine 9000
slow 60
capture_bg "$T/r-nine" -t nine >"$T/nine.out" 2>"$T/nine.err"
wait_for_records "$T/nine.err"
rc=0
capture "$T/r-nine" -t nine 2>"$T/locked.err" || rc=$?
[ "$rc" -eq 1 ] && grep -qi 'lock' "$T/locked.err" || fail "a second capture was not refused (exit $rc): $(cat "$T/locked.err")"
pass "a second capture into a locked repository is refused"
kill -KILL "$cap"
wait "$cap" 2>/dev/null || true # bash reports the kill; that is the point
slow 0
"$KTAPE" verify -r "$T/r-nine" --all >"$T/verify.out" 2>&1 || fail "earlier snapshots do not verify after kill -9: $(cat "$T/verify.out")"
capture "$T/r-nine" -t nine 2>"$T/nine2.err" || fail "capture after kill -9 failed: $(cat "$T/nine2.err")"
same_as_kafka nine "$T/r-nine"
pass "after kill -9 the stale lock was taken over and the rerun lost nothing"

# ---- unreachable brokers -------------------------------------------------------
start=$(date +%s)
rc=0
"$KTAPE" capture -b 127.0.0.1:1 -r "$T/r-none" -t x --timeout 2s --no-progress 2>"$T/none.err" || rc=$?
elapsed=$(($(date +%s) - start))
[ "$rc" -eq 1 ] || fail "unreachable brokers: exit $rc"
[ "$elapsed" -le 6 ] || fail "unreachable brokers took ${elapsed}s with --timeout 2s"
grep -q '127.0.0.1:1' "$T/none.err" || fail "the error does not name the brokers: $(cat "$T/none.err")"
[ ! -e "$T/r-none" ] || fail "a capture that reached no broker created the repository \$T/r-none"
pass "unreachable brokers fail within the timeout: $(grep 'ktape capture:' "$T/none.err")"
