#!/usr/bin/env bash
# ktape demo, the README's first command: it must finish well under a
# minute, say "equal: yes" with every stage done, and exit 0; its JSON
# report must agree; and when a difference is planted in the restored
# cluster (--inject-difference) it must find it, say "equal: no" and exit 6,
# so that "equal: yes" is known to be earned.
. "$(dirname "$0")/lib.sh"
require_cmd jq

start=$(date +%s)
rc=0
"$KTAPE" demo >"$T/demo.out" 2>"$T/demo.err" || rc=$?
elapsed=$(($(date +%s) - start))
cat "$T/demo.out"
[ "$rc" -eq 0 ] || fail "ktape demo exited $rc: $(cat "$T/demo.err")"
[ "$elapsed" -lt 60 ] || fail "ktape demo took ${elapsed} s, the README promises under a minute"
grep -qx 'equal: yes' "$T/demo.out" || fail "the report does not say equal: yes"
for stage in generate capture verify restore compare replay; do
	line=$(grep -E "^$stage " "$T/demo.out") || fail "no report line for $stage"
	case $line in *"not done"*) fail "stage $stage not done" ;; esac
done
# Every generated record was captured, verified, restored and compared.
records=$(awk '$1 == "generate" { print $2 }' "$T/demo.out")
for stage in capture verify restore compare; do
	n=$(awk -v s="$stage" '$1 == s { print $2 }' "$T/demo.out")
	[ "$n" -eq "$records" ] || fail "$stage handled $n records, $records were generated"
done
# ... and every stage counts the same bytes for them, so the columns compare.
mb=$(awk '$1 == "generate" { print $3 }' "$T/demo.out")
for stage in capture verify restore compare; do
	m=$(awk -v s="$stage" '$1 == s { print $3 }' "$T/demo.out")
	[ "$m" = "$mb" ] || fail "$stage reports $m MB for the records generate reports as $mb MB"
done
[ "$(awk '$1 == "capture" { print $5 }' "$T/demo.out")" = "$(awk '$1 == "verify" { print $5 }' "$T/demo.out")" ] ||
	fail "capture and verify report different ratios for the same snapshot"
grep -q 'compared' "$T/demo.out" || fail "no comparison summary"
pass "ktape demo: $records records through every stage, equal: yes, in ${elapsed} s"

# The JSON report, with the repository kept.
"$KTAPE" demo --json --repo "$T/repo" >"$T/demo.json" 2>"$T/demo.err" ||
	fail "ktape demo --json failed: $(cat "$T/demo.err")"
jq -e '.equal == true and .failure == null and ([.stages[] | select(.done | not)] | length) == 0
	and .replayed_records == .replay_window_records and .replayed_records > 0
	and .groups_compared == 2
	and ([.stages[] | select(.stage != "replay") | .bytes] | unique | length) == 1' "$T/demo.json" >/dev/null || fail "unexpected JSON report: $(cat "$T/demo.json")"
"$KTAPE" verify -r "$T/repo" >"$T/verify.out" 2>&1 || fail "the kept repository does not verify: $(cat "$T/verify.out")"
pass "--json report agrees, and the kept repository verifies"

# Planted differences must be found.
for what in record offset; do
	rc=0
	"$KTAPE" demo --inject-difference "$what" >"$T/diff.out" 2>"$T/diff.err" || rc=$?
	[ "$rc" -eq 6 ] || fail "with a planted $what difference the demo exited $rc, want 6"
	grep -qx 'equal: no' "$T/diff.out" || fail "with a planted $what difference the report does not say equal: no"
	grep -q 'first difference' "$T/diff.out" || fail "the planted $what difference is not described"
	pass "a planted $what difference is found: $(grep -o 'first difference: .*' "$T/diff.out")"
done

expect_status 2 "$KTAPE" demo --size 0
expect_status 2 "$KTAPE" demo --speed zero
pass "bad options are refused with exit 2"
