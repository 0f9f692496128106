#!/usr/bin/env bash
# A restore stopped by SIGINT, and one killed by SIGKILL mid-way, both
# rerun with the same command, end with each record in the target exactly
# once, at the same offsets as in the source.  A delivery Kafka refuses
# stops the restore and names where.
. "$(dirname "$0")/lib.sh"
require_cmd kcat jq

start_sandbox -n 1 --topic orders:3
SRC=$BOOTSTRAP
"$KTAPE" gen -b "$SRC" -t orders -n 15000 --seed 7 --keys 500 --size 20-60 --headers 1 \
	--tombstones 5% >/dev/null || fail "gen failed"
kcat_dump orders >"$T/src.dump"
REPO=$T/repo
"$KTAPE" capture -b "$SRC" -r "$REPO" -t orders --admin-timeout 500ms --no-progress \
	>/dev/null 2>"$T/capture.err" || { cat "$T/capture.err" >&2; fail "capture failed"; }

start_sandbox -n 1 --from-snapshot "$REPO"
DST=$BOOTSTRAP
count() { BOOTSTRAP=$DST kcat_dump orders | wc -l; }
# Progress as the restore's checkpoint (rewritten every second) records it.
acked_over() {
	local n
	n=$(jq -s '[.[].partitions[].acked] | add // 0' "$REPO"/restores/*/checkpoint.json 2>/dev/null) &&
		[ "$n" -gt "$1" ]
}
# The rate limit makes the restore last about 5 s, so the signals land
# mid-way.
restore() { "$KTAPE" restore -b "$DST" -r "$REPO" --no-progress "$@"; }

# Started directly, not through the function, so that $! is ktape itself.
"$KTAPE" restore -b "$DST" -r "$REPO" --no-progress --max-rate 3000 >"$T/int.out" 2>&1 &
pid=$!
wait_until 10 acked_over 500
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 5 ] || fail "an interrupted restore exited $rc, not 5: $(cat "$T/int.out")"
rid=$(ls "$REPO/restores")
[ "$(jq -r .state "$REPO/restores/$rid/checkpoint.json")" = interrupted ] || fail "checkpoint is not 'interrupted'"
n1=$(count)
[ "$n1" -lt 15000 ] || fail "the restore finished before it was interrupted"
pass "SIGINT stops the restore with exit 5 after $n1 records"

# Another plan into the same unfinished topic would duplicate what the
# first one wrote: refused until it is resumed or --new insists.
set +e
"$KTAPE" restore -b "$DST" -r "$REPO" --no-progress --from-offset 0 >"$T/conflict.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "restore $rid into orders on the same cluster is unfinished; finish it with --resume $rid" \
	"$T/conflict.out" || fail "a second plan into an unfinished restore's topic: exit $rc, $(cat "$T/conflict.out")"
[ "$(count)" -eq "$n1" ] || fail "the refused restore sent records"
pass "a different plan into an unfinished restore's topics is refused"

"$KTAPE" restore -b "$DST" -r "$REPO" --no-progress --max-rate 3000 >"$T/kill.out" 2>&1 &
pid=$!
wait_until 10 acked_over $((n1 + 1000))
kill -KILL "$pid"
wait "$pid" || true
n2=$(count)
[ "$n2" -lt 15000 ] || fail "the restore finished before it was killed"
pass "SIGKILL lands after $n2 records"

expect_status 1 "$KTAPE" restore -b "$DST" -r "$REPO" --resume 20200101T000000000Z-00000000
expect_status 2 "$KTAPE" restore -b "$DST" -r "$REPO" --resume ../../etc
# By id this time: the plan recorded in the repository is what runs.
restore --resume "$rid" --json >"$T/final.json" 2>"$T/final.err" || { cat "$T/final.err" >&2; fail "the rerun failed"; }
jq -e --arg rid "$rid" --argjson n "$n2" \
	'.resumed and .restore_id == $rid and .records_skipped >= $n and
	 .records_skipped + .records_sent == 15000' \
	"$T/final.json" >/dev/null || fail "rerun after the kill: $(cat "$T/final.json")"
[ "$(jq -r .runs "$REPO/restores/$rid/checkpoint.json")" -eq 3 ] || fail "checkpoint does not count 3 runs"
BOOTSTRAP=$DST kcat_dump orders >"$T/dst.dump"
# Offsets included: each record exactly once, in its partition, in order.
expect_same "$T/src.dump" "$T/dst.dump"
pass "after SIGINT, SIGKILL and a rerun every record is in the target exactly once"

# A second restore of the same snapshot with another selection would send
# every record again after the first one's: refused, naming the finished
# restore, until --new insists (--dry-run: nothing is sent either way).
set +e
"$KTAPE" restore -b "$DST" -r "$REPO" --no-progress --from-offset 1 >"$T/dup.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] && grep -q "restore $rid already wrote snapshot .* into orders on this cluster" "$T/dup.out" &&
	grep -q -- "--new" "$T/dup.out" || fail "a duplicate restore of the same snapshot: exit $rc, $(cat "$T/dup.out")"
BOOTSTRAP=$DST kcat_dump orders >"$T/dst2.dump"
expect_same "$T/src.dump" "$T/dst2.dump"
"$KTAPE" restore -b "$DST" -r "$REPO" --no-progress --from-offset 1 --new --dry-run >"$T/dupnew.out" 2>&1 ||
	fail "--new did not override the refusal: $(cat "$T/dupnew.out")"
pass "a second restore of the same snapshot into the filled topic is refused unless --new"

# A delivery Kafka refuses for good stops the restore, naming the target
# partition and the source offset, and the checkpoint says it failed.
sandbox_ctl topic create failing:3 >/dev/null || fail "cannot create topic failing"
sandbox_ctl errors Produce MSG_SIZE_TOO_LARGE MSG_SIZE_TOO_LARGE MSG_SIZE_TOO_LARGE \
	MSG_SIZE_TOO_LARGE MSG_SIZE_TOO_LARGE MSG_SIZE_TOO_LARGE >/dev/null || fail "cannot inject errors"
set +e
"$KTAPE" restore -b "$DST" -r "$REPO" --map orders=failing --no-progress >"$T/fail.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "a refused delivery exited $rc: $(cat "$T/fail.out")"
grep -qE "delivery to failing\[[0-2]\] failed for source orders\[[0-2]\] offset [0-9]+" "$T/fail.out" ||
	fail "the failure does not name partition and offset: $(cat "$T/fail.out")"
fid=$(ls -t "$REPO/restores" | head -n 1)
[ "$(jq -r .state "$REPO/restores/$fid/checkpoint.json")" = failed ] || fail "checkpoint is not 'failed'"
[ ! -e "$REPO/restores/$fid/offsets.ktm" ] || fail "a failed restore wrote an offset map"
pass "a refused delivery stops the restore with its partition and source offset"
