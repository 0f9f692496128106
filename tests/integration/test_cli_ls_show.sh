#!/usr/bin/env bash
# ktape ls and ktape show over a repository built without Kafka: the valid
# repository vector (format/vectors/repo/valid) plus a second snapshot and
# a damaged manifest added by hand.  Checks the human and --json outputs
# and the exit codes.
. "$(dirname "$0")/lib.sh"
require_cmd jq

R="$T/repo"
cp -r "$KT_SOURCE_ROOT/format/vectors/repo/valid" "$R"
OLD=20261122T013214123Z-9f3a0c1e
NEW=20261123T000000000Z-00000001
# A newer incremental snapshot: the same chain, with a retention gap.
jq --arg id "$NEW" --arg parent "$OLD" '.id = $id | .parent = $parent | .kind = "incremental"
	| .topics[0].partitions[0].end_offset = 50
	| .topics[0].partitions[0].gaps = [{"from": 10, "to": 40, "reason": "retention"}]
	| .groups = [{"group": "billing", "topic": "orders", "partition": 3, "offset": 1, "metadata": null}]' \
	"$R/snapshots/$OLD.json" >"$R/snapshots/$NEW.json"

# ls: newest first, both forms.
"$KTAPE" ls -r "$R" >"$T/ls.txt"
[ "$(sed -n 2p "$T/ls.txt" | awk '{print $1}')" = "$NEW" ] || fail "ls: $NEW is not listed first: $(cat "$T/ls.txt")"
[ "$(sed -n 3p "$T/ls.txt" | awk '{print $1}')" = "$OLD" ] || fail "ls: $OLD is not listed second"
grep -q "incremental" "$T/ls.txt" || fail "ls: the kind is not shown"
pass "ls lists snapshots newest first"

"$KTAPE" ls -r "$R" --json >"$T/ls.json"
[ "$(jq -r '.[0].id' "$T/ls.json")" = "$NEW" ] || fail "ls --json: wrong first id"
[ "$(jq -r '.[1].kind' "$T/ls.json")" = "full" ] || fail "ls --json: wrong kind"
[ "$(jq -r '.[1].records' "$T/ls.json")" = "1" ] || fail "ls --json: wrong record count"
[ "$(jq -r '.[1].topics' "$T/ls.json")" = "1" ] || fail "ls --json: wrong topic count"
[ "$(jq -r '.[0].parent' "$T/ls.json")" = "$OLD" ] || fail "ls --json: wrong parent"
jq -e '.[1].stored_bytes > 0 and .[1].compression_ratio > 0' "$T/ls.json" >/dev/null ||
	fail "ls --json: no stored bytes or ratio"
pass "ls --json gives ids, kinds, counts and sizes"

# show: latest by default, by id, and --json is the manifest itself.
"$KTAPE" show -r "$R" >"$T/show.txt"
grep -q "snapshot $NEW (incremental)" "$T/show.txt" || fail "show: not the latest: $(cat "$T/show.txt")"
grep -q "partition 3: offsets \[0, 50)" "$T/show.txt" || fail "show: no offset range"
grep -q "GAP \[10, 40): 30 offset(s) lost (retention)" "$T/show.txt" || fail "show: gap not shown"
grep -q "config cleanup.policy = delete" "$T/show.txt" || fail "show: configs not shown"
grep -q "billing orders/3 = 1" "$T/show.txt" || fail "show: group offsets not shown"
"$KTAPE" show -r "$R" "$OLD" >"$T/show-old.txt"
grep -q "snapshot $OLD (full)" "$T/show-old.txt" || fail "show ID: wrong snapshot"
"$KTAPE" show -r "$R" "$OLD" --json >"$T/show.json"
[ "$(jq -r '.topics[0].partitions[0].segments[0].path' "$T/show.json")" = \
  "$(jq -r '.topics[0].partitions[0].segments[0].path' "$R/snapshots/$OLD.json")" ] ||
	fail "show --json: segment path differs from the manifest"
[ "$(jq -r '.format' "$T/show.json")" = "ktape-snapshot" ] || fail "show --json: not a manifest"
pass "show prints ranges, gaps, configs and group offsets; --json is the manifest"

# Errors: usage, a missing snapshot, not a repository, a damaged manifest.
expect_status 2 "$KTAPE" ls
expect_status 2 "$KTAPE" show -r "$R" a b
expect_status 1 "$KTAPE" show -r "$R" 20200101T000000000Z-00000000
mkdir "$T/empty"
expect_status 1 "$KTAPE" ls -r "$T/empty"   # a wrong -r, not damage
printf '{"format": "ktape-snapshot", "vers' >"$R/snapshots/20261124T000000000Z-00000002.json"
set +e
"$KTAPE" ls -r "$R" >"$T/ls-damaged.txt" 2>&1
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "ls with a damaged manifest exited $rc, not 3"
grep -q "20261124T000000000Z-00000002 *DAMAGED" "$T/ls-damaged.txt" || fail "ls: damaged manifest not reported"
grep -q "$OLD" "$T/ls-damaged.txt" || fail "ls: the other snapshots are no longer listed"
expect_status 3 "$KTAPE" show -r "$R" latest
pass "usage, missing and damaged manifests give exit codes 2, 1 and 3"
