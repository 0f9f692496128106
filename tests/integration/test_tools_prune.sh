#!/usr/bin/env bash
# ktape prune on a repository made by real captures: --dry-run removes
# nothing; --keep-last / --keep-daily drop the right manifests and exactly
# the segments no remaining snapshot references, and what remains verifies
# and reads as before.  Then prune is killed with SIGKILL at random moments
# (20 to 40 seeded runs): every remaining snapshot still verifies, and a prune
# run afterwards ends in the same state as an uninterrupted one.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
require_cmd jq

start_fixture_a
BASE=$T/base
capture() {
	"$KTAPE" -q capture -b "$BOOTSTRAP" -r "$BASE" --admin-timeout 500ms --no-progress \
		--segment-size 64K --block-size 4K "$@" || fail "capture $* failed"
}
# Snapshots over different topics, so that pruning old ones frees segments;
# the last continues the first's chain, so it keeps those segments alive.
capture -t audit_events
capture -t outbox_events
capture -t somabrain_events
"$KTAPE" gen -b "$BOOTSTRAP" -t audit_events -p 1 -n 150 --seed 55 >/dev/null
capture -t audit_events
mapfile -t SNAPS < <(ls "$BASE/snapshots" | sed 's/\.json$//')
[ "${#SNAPS[@]}" -eq 4 ] || fail "expected 4 snapshots, found ${#SNAPS[@]}"
NEWEST=${SNAPS[3]}
"$KTAPE" cat -r "$BASE" -t audit_events >"$T/audit.before" || fail "cat failed"
segs() { (cd "$1" && find segments -name '*.kts' | sort); }
# The segments the newest snapshot needs: what --keep-last 1 must leave.
jq -r '.topics[].partitions[].segments[].path' "$BASE/snapshots/$NEWEST.json" | sort >"$T/needed"

# Dry run: says what would go, touches nothing.
cp -a "$BASE" "$T/r"
(cd "$T/r" && find . -type f | sort) >"$T/files.before"
"$KTAPE" prune -r "$T/r" --keep-last 1 --dry-run >"$T/dry.out" 2>"$T/dry.err" || fail "dry run failed"
[ "$(grep -c '^would remove ' "$T/dry.out")" -eq 3 ] || fail "dry run: $(cat "$T/dry.out")"
grep -q "would be freed" "$T/dry.err" || fail "dry run summary: $(cat "$T/dry.err")"
(cd "$T/r" && find . -type f | sort) | cmp -s - "$T/files.before" || fail "the dry run changed the repository"
pass "--dry-run lists 3 snapshots and removes nothing"

"$KTAPE" prune -r "$T/r" --keep-last 1 >"$T/prune.out" 2>"$T/prune.err" || fail "prune failed: $(cat "$T/prune.err")"
[ "$(ls "$T/r/snapshots")" = "$NEWEST.json" ] || fail "prune kept $(ls "$T/r/snapshots")"
segs "$T/r" | cmp -s - "$T/needed" || fail "prune left other segments than the newest snapshot needs"
[ -z "$(find "$T/r/segments" -name '*.kti' | sed 's/\.kti$/.kts/' | while read -r f; do [ -e "$f" ] || echo "$f"; done)" ] ||
	fail "prune left indexes without their segments"
"$KTAPE" verify -r "$T/r" --all 2>/dev/null || fail "the pruned repository does not verify"
"$KTAPE" cat -r "$T/r" -t audit_events | cmp -s - "$T/audit.before" || fail "audit_events reads differently after prune"
cp -a "$T/r" "$T/reference"
pass "--keep-last 1 leaves the newest snapshot and exactly its segments; verifies; reads the same"

# All four were taken today: --keep-daily 1 keeps only the newest, and a
# rule combination keeps the union.
rm -rf "$T/r" && cp -a "$BASE" "$T/r"
"$KTAPE" prune -r "$T/r" --keep-daily 1 >/dev/null 2>&1 || fail "prune --keep-daily failed"
[ "$(ls "$T/r/snapshots")" = "$NEWEST.json" ] || fail "--keep-daily 1 kept $(ls "$T/r/snapshots")"
rm -rf "$T/r" && cp -a "$BASE" "$T/r"
"$KTAPE" prune -r "$T/r" --keep-last 2 --keep-weekly 1 >/dev/null 2>&1 || fail "prune --keep-last 2 failed"
[ "$(ls "$T/r/snapshots" | wc -l)" -eq 2 ] || fail "--keep-last 2 --keep-weekly 1 kept $(ls "$T/r/snapshots")"
"$KTAPE" verify -r "$T/r" --all 2>/dev/null || fail "not clean after --keep-last 2"
pass "--keep-daily and combined rules keep the right snapshots"

# SIGKILL at random moments while prune runs: delays are drawn within the
# time one uninterrupted prune takes here (measured, with its start-up).
# The seed makes the draws repeatable.
rm -rf "$T/r" && cp -a "$BASE" "$T/r"
t0=$(date +%s%N)
"$KTAPE" -q prune -r "$T/r" --keep-last 1 >/dev/null 2>&1 || fail "timed prune failed"
span_us=$((($(date +%s%N) - t0) / 1000))
note "one prune takes ${span_us} us"
# 20 runs, extended up to 40 while fewer than 3 were killed mid-work (a
# loaded machine can make the measured window a poor guess).
RANDOM=4242
interrupted=0
runs=0
for i in $(seq 40); do
	[ "$i" -gt 20 ] && [ "$interrupted" -ge 3 ] && break
	runs=$i
	rm -rf "$T/r" && cp -a "$BASE" "$T/r"
	delay=$(printf '0.%06d' $(((RANDOM * 32768 + RANDOM) % span_us)))
	"$KTAPE" -q prune -r "$T/r" --keep-last 1 >/dev/null 2>&1 &
	pid=$!
	sleep "$delay"
	kill -KILL "$pid" 2>/dev/null || true
	rc=0
	{ wait "$pid"; } 2>/dev/null || rc=$?
	[ "$rc" -eq 0 ] || [ "$rc" -eq 137 ] || fail "run $i: prune exited $rc"
	# Killed in the middle: some of the work done, not all of it.
	if [ "$rc" -eq 137 ] && { [ "$(ls "$T/r/snapshots" | wc -l)" -ne 4 ] ||
		[ "$(segs "$T/r" | wc -l)" -ne "$(segs "$BASE" | wc -l)" ]; }; then
		interrupted=$((interrupted + 1))
	fi
	"$KTAPE" verify -r "$T/r" --all 2>"$T/kill.err" ||
		fail "run $i (killed after ${delay}s): a remaining snapshot does not verify: $(cat "$T/kill.err")"
	[ -e "$T/r/snapshots/$NEWEST.json" ] || fail "run $i: the newest snapshot is gone"
	"$KTAPE" -q prune -r "$T/r" --keep-last 1 >/dev/null 2>&1 || fail "run $i: prune after the kill failed"
	segs "$T/r" | cmp -s - "$T/needed" || fail "run $i: the second prune did not finish the job"
	ls "$T/r/snapshots" | cmp -s - <(ls "$T/reference/snapshots") || fail "run $i: snapshots differ from the reference"
done
[ "$interrupted" -gt 0 ] || fail "no run was killed in the middle of its work: the delays are wrong"
pass "prune killed with SIGKILL mid-work in $interrupted of $runs runs: every remaining snapshot verified each time, and the next prune finished the job"

expect_status 2 "$KTAPE" prune -r "$BASE"
expect_status 2 "$KTAPE" prune -r "$BASE" --keep-last x
expect_status 2 "$KTAPE" prune --keep-last 1
pass "a policy that keeps nothing, a bad count and a missing -r are usage errors"
