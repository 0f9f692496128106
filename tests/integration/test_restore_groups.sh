#!/usr/bin/env bash
# Consumer-group offsets captured with the snapshot land on the target
# translated through the offset map: a consumer in the group then reads
# exactly the records it had not consumed.  The target partitions already
# hold other records, so source and target offsets differ.  --dry-run
# prints the table and commits nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
require_cmd kcat jq

start_fixture_a
SRC=$BOOTSTRAP
kcat_dump audit_events >"$T/audit.src"
kcat_dump outbox_events >"$T/outbox.src"
REPO=$T/repo
"$KTAPE" capture -b "$SRC" -r "$REPO" -t audit_events -t outbox_events \
	--group audit_processor_group --group outbox_publisher_group --admin-timeout 500ms \
	--no-progress >/dev/null 2>"$T/capture.err" || { cat "$T/capture.err" >&2; fail "capture failed"; }

start_sandbox -n 1 --from-snapshot "$REPO"
DST=$BOOTSTRAP
# Records the restore must not disturb: 7 in audit_events/1, 3 in
# outbox_events/0, so the restored records start at offsets 7 and 3 there.
seq 7 | kcat_produce audit_events -p 1
seq 3 | kcat_produce outbox_events -p 0

# The dry run predicts the table and commits nothing.
"$KTAPE" restore -b "$DST" -r "$REPO" --groups '^(audit|outbox)_' --dry-run >"$T/dry.out" 2>"$T/dry.err" ||
	{ cat "$T/dry.err" >&2; fail "dry run failed"; }
row() { grep -E "^ +$1 +$2 +$3 +$4 +$5\$" "$T/dry.out" >/dev/null || fail "dry run table lacks '$*': $(cat "$T/dry.out")"; }
row audit_processor_group audit_events 0 400 400
row audit_processor_group audit_events 1 300 307
row outbox_publisher_group outbox_events 0 200 203
row outbox_publisher_group outbox_events 1 250 250
grep -q "nothing committed" "$T/dry.out" || fail "the dry run does not say nothing was committed"
[ "$(kcat_dump audit_events | wc -l)" -eq 7 ] || fail "the dry run sent records"
pass "--dry-run prints the translated table and sends nothing"

"$KTAPE" restore -b "$DST" -r "$REPO" --group audit_processor_group --group outbox_publisher_group \
	--json >"$T/restore.json" 2>"$T/restore.err" || { cat "$T/restore.err" >&2; fail "restore failed"; }
jq -e '[.groups[] | select(.committed)] | length == 4' "$T/restore.json" >/dev/null ||
	fail "not every group offset was committed: $(jq -c .groups "$T/restore.json")"
jq -e '[.groups[] | select(.topic == "audit_events" and .partition == 1)][0].target_offset == 307' \
	"$T/restore.json" >/dev/null || fail "audit_events/1 was not translated to 307"
pass "group offsets committed, translated past the records already there"

# A consumer in each group reads exactly what it had not consumed.
consume() {
	kcat -b "$DST" -G "$1" -J -e -q -X auto.offset.reset=earliest "$2" |
		sed -E 's/^\{"topic":"([^"]*)","partition":([0-9]+),"offset":([0-9]+),/\1\t\2\t\3\t&/' |
		LC_ALL=C sort -t "$(printf '\t')" -k1,1 -k2,2n -k3,3n | cut -f 4-
}
consume audit_processor_group audit_events >"$T/audit.got"
jq -c 'select(.partition == 1 and .offset >= 300)' "$T/audit.src" >"$T/audit.want"
expect_same --ignore-offsets "$T/audit.want" "$T/audit.got"
consume outbox_publisher_group outbox_events >"$T/outbox.got"
jq -c 'select(.partition == 0 and .offset >= 200)' "$T/outbox.src" >"$T/outbox.want"
expect_same --ignore-offsets "$T/outbox.want" "$T/outbox.got"
pass "each group resumes at the first record it had not consumed"
