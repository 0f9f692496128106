#!/usr/bin/env bash
# ktape capture --follow commits an incremental snapshot every --interval,
# picks up records produced meanwhile, updates --stats-file each time,
# rides out a broker outage, and on SIGTERM commits what is complete and
# exits 0.  Secrets given with -X appear nowhere: not on the terminal, not
# in the repository.
. "$(dirname "$0")/lib.sh"
require_cmd kcat jq

start_sandbox -n 1 --topic feed:2
REPO=$T/repo
STATS=$T/ktape.prom
seq 1 100 | kcat_produce feed

(exec "$KTAPE" -v -v capture -b "$BOOTSTRAP" -r "$REPO" -t feed --follow --interval 1s --admin-timeout 200ms \
	--no-progress --stats-file "$STATS" --timeout 1s -X sasl.username=alice -X sasl.password=TOPSECRET-1 \
	>"$T/follow.out" 2>"$T/follow.err") &
cap=$!
count_backup() { "$KTAPE" cat -r "$REPO" -t feed 2>/dev/null | wc -l; }
backup_has() { [ "$(count_backup)" -eq "$1" ]; }
wait_until 15 backup_has 100
pass "the first snapshot holds the first 100 records"
seq 101 300 | kcat_produce feed
wait_until 15 backup_has 300
pass "a later snapshot picked up the 200 records produced meanwhile"
# The broker goes away for longer than --timeout: rounds fail, --follow
# carries on, and catches up once the broker is back.
sandbox_ctl broker down 1 >/dev/null
wait_until 15 grep -q "trying again at the next interval" "$T/follow.err"
grep -q '^ktape_capture_success{repo=".*"} 0$' "$STATS" || fail "a failed round left success at 1: $(cat "$STATS")"
sandbox_ctl broker up 1 >/dev/null
seq 301 350 | kcat_produce feed
wait_until 20 backup_has 350
pass "--follow rode out a broker outage longer than --timeout and caught up"
kill -TERM "$cap"
rc=0
wait "$cap" || rc=$?
[ "$rc" -eq 0 ] || fail "--follow exited $rc after SIGTERM: $(tail -n 5 "$T/follow.err")"
pass "SIGTERM ends --follow with exit 0"

kcat_dump feed >"$T/feed.kcat"
"$KTAPE" cat -r "$REPO" -t feed >"$T/feed.ktape"
expect_same "$T/feed.kcat" "$T/feed.ktape"
n=$(ls "$REPO"/snapshots/*.json | wc -l)
[ "$n" -ge 2 ] || fail "only $n snapshot(s) after --follow"
first=$(ls "$REPO"/snapshots/*.json | head -n 1)
last=$(ls "$REPO"/snapshots/*.json | tail -n 1)
[ "$(jq -r .kind "$first")" = full ] || fail "the first snapshot is $(jq -r .kind "$first")"
jq -e '.kind == "incremental" or .kind == "partial"' "$last" >/dev/null || fail "the last snapshot is $(jq -r .kind "$last")"
pass "$n snapshots: full, then incremental"
snaps=$(sed -n 's/^ktape_capture_snapshots_total{.*} //p' "$STATS")
[ "$snaps" -eq "$n" ] || fail "stats count $snaps snapshots, the repository holds $n"
grep -q '^ktape_capture_records_total{repo=".*"} 350$' "$STATS" || fail "stats: $(cat "$STATS")"
[ "$(sed -n 's/^ktape_capture_last_success_timestamp_seconds{.*} //p' "$STATS")" -gt 0 ] || fail "no last success time"
pass "the stats file follows the snapshots"

if grep -rq TOPSECRET "$T/follow.out" "$T/follow.err" "$REPO" "$STATS"; then
	fail "a secret leaked: $(grep -rl TOPSECRET "$T/follow.out" "$T/follow.err" "$REPO" "$STATS")"
fi
pass "the -X secret appears in no output and no file of the repository"
