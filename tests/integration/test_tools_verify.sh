#!/usr/bin/env bash
# ktape verify against repositories made by real captures from the sandbox:
# clean repositories pass; a flipped byte in a block, a missing segment, a
# segment the manifest does not list, a manifest entry whose file is gone
# and a damaged or missing index are each reported with file, block, byte
# offset, records affected and snapshots, with exit code 3; --repair
# rebuilds indexes, after which the repository verifies clean.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
require_cmd jq

# shellcheck disable=SC2046 # one flag per word
start_sandbox $(fixture_a_topics) --topic churn:1
fixture_a_load
REPO=$T/repo
capture() {
	"$KTAPE" -q capture -b "$BOOTSTRAP" -r "$REPO" -t '^.*' --admin-timeout 500ms --no-progress \
		--block-size 4K --segment-size 64K "$@" || fail "capture failed"
}
# Two snapshots: the second continues the first, so they share segments.
capture
"$KTAPE" gen -b "$BOOTSTRAP" -t audit_events -p 0 -n 200 --seed 77 >/dev/null
capture
S1=$(ls "$REPO/snapshots" | sed -n 1p | sed 's/\.json$//')
S2=$(ls "$REPO/snapshots" | sed -n 2p | sed 's/\.json$//')
[ -n "$S1" ] && [ -n "$S2" ] && [ "$S1" != "$S2" ] || fail "expected two snapshots"

# A third capture over a retention hole: the gap it records is accounted
# for, not damage.  (The mock keeps 5 MiB per partition.)
"$KTAPE" gen -b "$BOOTSTRAP" -t churn -n 10 --seed 5 >/dev/null
"$KTAPE" -q capture -b "$BOOTSTRAP" -r "$T/gap" -t churn --admin-timeout 500ms --no-progress || fail "churn capture failed"
"$KTAPE" gen -b "$BOOTSTRAP" -t churn -n 80 --size 100000 --compressibility 0 -z none >/dev/null
rc=0
"$KTAPE" -q capture -b "$BOOTSTRAP" -r "$T/gap" -t churn --admin-timeout 500ms --no-progress || rc=$?
[ "$rc" -eq 4 ] || fail "capture over a retention hole exited $rc, not 4"
"$KTAPE" verify -r "$T/gap" --all 2>"$T/gap.err" || fail "a recorded retention gap made verify fail: $(cat "$T/gap.err")"
pass "a snapshot with a recorded retention gap verifies clean"

"$KTAPE" verify -r "$REPO" --all 2>"$T/clean.err" || fail "clean repository: verify failed: $(cat "$T/clean.err")"
grep -q "2 snapshot(s).*clean" "$T/clean.err" || fail "verify summary: $(cat "$T/clean.err")"
"$KTAPE" verify -r "$REPO" --json >"$T/clean.json" || fail "verify --json of the latest failed"
jq -e '.status == "clean" and .problems == 0 and .records > 0 and .blocks > .segments' "$T/clean.json" >/dev/null ||
	fail "verify --json: $(cat "$T/clean.json")"
pass "captured repository verifies clean ($(jq .segments "$T/clean.json") segments, $(jq .blocks "$T/clean.json") blocks)"

# Runs verify on a copy, expecting exit 3, JSON on $T/out.json, text on $T/out.err.
damaged_copy() {
	rm -rf "$T/r"
	cp -a "$REPO" "$T/r"
}
verify_damaged() {
	local rc=0
	"$KTAPE" verify -r "$T/r" "$@" --json >"$T/out.json" 2>/dev/null || rc=$?
	[ "$rc" -eq 3 ] || fail "verify $* --json exited $rc, not 3: $(cat "$T/out.json")"
	rc=0
	"$KTAPE" verify -r "$T/r" "$@" 2>"$T/out.err" || rc=$?
	[ "$rc" -eq 3 ] || fail "verify $* exited $rc, not 3: $(cat "$T/out.err")"
}

# The first segment of audit_events/0, which both snapshots reference.
SEG=$(jq -r '.topics[] | select(.name == "audit_events") | .partitions[0].segments[0].path' \
	"$REPO/snapshots/$S1.json")
# Block header positions: "KTBK" magics, in file order.
block_at() { grep -obUa KTBK "$1" | sed -n "$(($2 + 1))p" | cut -d: -f1; }
u32_at() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }

# 1. A flipped byte in block 1's payload.
damaged_copy
off=$(block_at "$T/r/$SEG" 1)
[ -n "$off" ] || fail "segment $SEG has fewer than two blocks"
nrec=$(u32_at "$T/r/$SEG" $((off + 8)))
pos=$((off + 72 + 20))
printf '%s' "$(printf '\\%03o' $(( ($(od -An -tu1 -j $pos -N1 "$T/r/$SEG") ^ 0x55) )))" |
	dd of="$T/r/$SEG" bs=1 seek=$pos conv=notrunc status=none
verify_damaged --all
jq -e --arg p "$SEG" --argjson off "$off" --argjson n "$nrec" --arg s "$S2" --arg s1 "$S1" '
	.status == "damaged" and .problems == 1 and .records_affected == $n and
	(.problem_list[0] | .path == $p and .block == 1 and .file_offset == $off and
	 .records_affected == $n and .snapshot == $s and .snapshots_affected == 2 and .snapshots == [$s, $s1] and
	 .topic == "audit_events" and .partition == 0)' "$T/out.json" >/dev/null ||
	fail "corrupt block: $(jq -c . "$T/out.json")"
grep -q "DAMAGED audit_events/0 $SEG block 1 at byte $off: .*$nrec record(s) lost \[snapshots $S2, $S1\]" "$T/out.err" ||
	fail "corrupt block, text report: $(cat "$T/out.err")"
expect_status 3 "$KTAPE" cat -r "$T/r" -t audit_events -p 0 >/dev/null 2>&1
pass "flipped byte: exit 3 naming $SEG block 1 at byte $off, $nrec records, both snapshots"

# 2. A missing segment (a manifest entry whose file is gone).
damaged_copy
recs=$(jq -r '.topics[] | select(.name == "audit_events") | .partitions[0].segments[0].records' "$REPO/snapshots/$S1.json")
rm "$T/r/$SEG"
verify_damaged --snapshot "$S1"
jq -e --arg p "$SEG" --argjson n "$recs" '.problems == 1 and
	(.problem_list[0] | .path == $p and .records_affected == $n and (.message | test("missing")))' \
	"$T/out.json" >/dev/null || fail "missing segment: $(jq -c . "$T/out.json")"
grep -q "$SEG.*segment file is missing; $recs record(s) lost" "$T/out.err" || fail "missing segment: $(cat "$T/out.err")"
pass "missing segment: exit 3 naming $SEG and its $recs records"

# 3. A manifest that lost a segment entry (sums adjusted so that it still
#    loads): the unlisted segment holds offsets inside the partition's range
#    that no listed segment covers.
damaged_copy
jq '(.topics[] | select(.name == "audit_events") | .partitions[0]) |=
	(.records -= .segments[1].records | .raw_bytes -= .segments[1].raw_bytes | del(.segments[1]))' \
	"$REPO/snapshots/$S1.json" >"$T/r/snapshots/$S1.json"
SEG1=$(jq -r '.topics[] | select(.name == "audit_events") | .partitions[0].segments[1].path' "$REPO/snapshots/$S1.json")
verify_damaged --snapshot "$S1"
jq -e --arg p "$SEG1" '[.problem_list[] | select(.path == $p and (.message | test("does not list")))] | length == 1' \
	"$T/out.json" >/dev/null || fail "unlisted segment: $(jq -c . "$T/out.json")"
pass "a segment the manifest does not list is found by its offsets"

# An unreferenced copy of a listed segment is not damage: like what an
# interrupted capture or prune leaves, it is noted, and prune removes it.
damaged_copy
LAST=$(jq -r '.topics[] | select(.name == "audit_events") | .partitions[0].segments[-1].path' "$REPO/snapshots/$S2.json")
cp "$T/r/$LAST" "$T/r/segments/audit_events/0/00000000000000099999-0123456789abcdef.kts"
"$KTAPE" verify -r "$T/r" --all 2>"$T/orphan.err" || fail "an unreferenced segment made verify fail: $(cat "$T/orphan.err")"
grep -q "1 segment file(s) belong to no snapshot" "$T/orphan.err" || fail "the unreferenced segment is not noted: $(cat "$T/orphan.err")"
pass "an unreferenced segment whose offsets listed segments cover is not damage"

# 4. A damaged index, then a missing one: reported, rebuilt by --repair, clean.
damaged_copy
IDX=${SEG%.kts}.kti
printf 'X' | dd of="$T/r/$IDX" bs=1 seek=60 conv=notrunc status=none
rm "$T/r/${SEG1%.kts}.kti"
verify_damaged --all
jq -e --arg i "$IDX" '.problems == 2 and .records_affected == 0 and
	([.problem_list[] | select(.message | test("ktape verify --repair"))] | length == 2)' \
	"$T/out.json" >/dev/null || fail "damaged index: $(jq -c . "$T/out.json")"
grep -q "$IDX" "$T/out.err" || fail "damaged index not named: $(cat "$T/out.err")"
grep -q "index file is missing" "$T/out.err" || fail "missing index not reported: $(cat "$T/out.err")"
"$KTAPE" verify -r "$T/r" --all --repair 2>"$T/repair.err" || fail "verify --repair failed: $(cat "$T/repair.err")"
grep -q "2 index(es) rebuilt" "$T/repair.err" || fail "repair summary: $(cat "$T/repair.err")"
cmp -s "$T/r/$IDX" "$REPO/$IDX" || fail "the rebuilt index differs from the writer's"
"$KTAPE" verify -r "$T/r" --all 2>"$T/after.err" || fail "not clean after --repair: $(cat "$T/after.err")"
pass "damaged and missing indexes: reported, rebuilt byte for byte by --repair, then clean"

# 5. A damaged manifest is one problem; the other snapshot is still checked.
damaged_copy
head -c 100 "$REPO/snapshots/$S1.json" >"$T/r/snapshots/$S1.json"
verify_damaged --all
jq -e --arg p "snapshots/$S1.json" --arg s "$S1" '.problems == 1 and .segments > 0 and
	(.problem_list[0] | .path == $p and .snapshot == $s)' "$T/out.json" >/dev/null ||
	fail "damaged manifest: $(jq -c . "$T/out.json")"
grep -q "DAMAGED snapshots/$S1.json: .*not valid JSON" "$T/out.err" || fail "damaged manifest: $(cat "$T/out.err")"
pass "a damaged manifest is reported by name and the other snapshot is still verified"

# Errors that stop verification itself.
expect_status 2 "$KTAPE" verify
expect_status 2 "$KTAPE" verify -r "$REPO" --all --snapshot "$S1"
expect_status 1 "$KTAPE" verify -r "$REPO" --snapshot 20200101T000000000Z-00000000
pass "usage errors exit 2, an unknown snapshot 1"
