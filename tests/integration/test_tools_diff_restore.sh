#!/usr/bin/env bash
# ktape diff --restore compares a snapshot with a cluster it was restored
# into, through the restore's offset map: a partition whose log start had
# moved (retention) lands at other offsets, and a target that already held
# records puts the restored ones after them; plain diff calls both
# different, --restore equal.  Against other data at the same place it
# still finds the differences; a restore that did not keep partitions, or
# is unfinished, is refused with the reason (RELIABILITY.md finding 9.2).
. "$(dirname "$0")/lib.sh"
require_cmd jq

# 8 MB into one partition: the sandbox keeps 5 MiB, so the log start moves.
start_sandbox -n 1 --topic ret:1 --topic small:2
SRC=$BOOTSTRAP
"$KTAPE" gen -b "$SRC" -t ret -n 4000 --size 2000 --compressibility 0 --seed 4 >/dev/null || fail "gen ret failed"
"$KTAPE" gen -b "$SRC" -t small -n 300 --seed 5 --headers 1 --null-keys 10% >/dev/null || fail "gen small failed"
REPO=$T/repo
"$KTAPE" -q capture -b "$SRC" -r "$REPO" -t ret -t small --admin-timeout 500ms --no-progress || fail "capture failed"
low=$("$KTAPE" show -r "$REPO" --json | jq '.topics[] | select(.name == "ret") | .partitions[0].start_offset')
[ "$low" -gt 0 ] || fail "the sandbox's retention did not move the log start (start $low)"

# The target already holds 3 records in small/1: the restored ones follow.
start_sandbox -n 1 --topic ret:1 --topic small:2
DST=$BOOTSTRAP
"$KTAPE" gen -b "$DST" -t small -p 1 -n 3 --seed 9 >/dev/null || fail "gen into the target failed"
"$KTAPE" restore -b "$DST" -r "$REPO" --no-progress -X compression.type=zstd --json >"$T/restore.json" 2>"$T/restore.err" ||
	fail "restore failed: $(cat "$T/restore.err")"
rid=$(jq -r .restore_id "$T/restore.json")

rc=0
"$KTAPE" diff -b "$DST" -r "$REPO" --json >"$T/plain.json" 2>/dev/null || rc=$?
[ "$rc" -eq 6 ] || fail "plain diff of a restore with moved offsets exited $rc, not 6"
pass "plain diff compares by offset: the restore at other offsets is reported different (exit 6)"

"$KTAPE" diff -b "$DST" -r "$REPO" --restore latest --json >"$T/routed.json" 2>"$T/routed.err" ||
	fail "diff --restore exited non-zero: $(cat "$T/routed.err")"
want=$((4000 - low + 300))
jq -e --arg rid "$rid" --argjson n "$want" '.status == "equal" and .restore == $rid and .records_equal == $n and
	.only_snapshot == 0 and .only_live == 0 and .differing == 0 and
	(.partition_list[] | select(.topic == "small" and .partition == 1) | .target_partition == 1)' \
	"$T/routed.json" >/dev/null || fail "diff --restore: $(jq -c . "$T/routed.json")"
grep -q "as restore $rid wrote it" "$T/routed.err" || fail "summary does not name the restore: $(cat "$T/routed.err")"
"$KTAPE" diff -b "$DST" -r "$REPO" --restore "$rid" -t small >"$T/routed.txt" 2>&1 || fail "diff --restore ID -t small failed"
pass "diff --restore: all $want restored records equal through the offset map, exit 0"

# Records produced after the restore are counted, not differences.
"$KTAPE" gen -b "$DST" -t small -p 0 -n 4 --seed 11 >/dev/null || fail "gen after the restore failed"
"$KTAPE" diff -b "$DST" -r "$REPO" --restore "$rid" -t small --json >"$T/after.json" 2>/dev/null ||
	fail "records after the restore made diff --restore fail"
jq -e '.status == "equal" and .live_after_end == 4' "$T/after.json" >/dev/null || fail "after: $(jq -c . "$T/after.json")"
pass "records produced after the restore are counted, not differences"

# Other data at the place the restore wrote: differences are found.
start_sandbox -n 1 --topic ret:1 --topic small:2
OTHER=$BOOTSTRAP
"$KTAPE" gen -b "$OTHER" -t small -p 1 -n 3 --seed 9 >/dev/null || fail "gen other failed"
"$KTAPE" gen -b "$OTHER" -t small -n 300 --seed 6 >/dev/null || fail "gen other failed"
rc=0
"$KTAPE" diff -b "$OTHER" -r "$REPO" --restore "$rid" -t small --json >"$T/other.json" 2>/dev/null || rc=$?
[ "$rc" -eq 6 ] || fail "diff --restore against other data exited $rc, not 6"
jq -e '.status == "different" and .differing > 0 and .records_equal < 300' "$T/other.json" >/dev/null ||
	fail "other data: $(jq -c . "$T/other.json")"
pass "diff --restore against other data at the restored offsets: exit 6"

# A restore with key partitioning mixes source partitions: refused, saying why.
start_sandbox -n 1 --topic small:3
KEYED=$BOOTSTRAP
"$KTAPE" restore -b "$KEYED" -r "$REPO" -t small --partitioning key --no-progress >/dev/null 2>&1 ||
	fail "key-partitioned restore failed"
kid=$(ls -t "$REPO/restores" | head -n 1)
rc=0
"$KTAPE" diff -b "$KEYED" -r "$REPO" --restore "$kid" >"$T/keyed.out" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q "used key partitioning" "$T/keyed.out" || fail "diff --restore of a key restore: exit $rc, $(cat "$T/keyed.out")"
expect_status 1 "$KTAPE" diff -b "$KEYED" -r "$REPO" --restore 20200101T000000000Z-00000000
expect_status 2 "$KTAPE" diff -b "$KEYED" -r "$REPO" --restore "$rid" -s 20200101T000000000Z-00000000
expect_status 2 "$KTAPE" diff -b "$KEYED" -r "$REPO" --state-dir "$T"
pass "key partitioning, an unknown restore and mismatched options are refused"
