#!/usr/bin/env bash
# A repository on object storage (format/object-storage.md): every command
# that takes -r PATH also takes -r s3://BUCKET/PREFIX.  Against s3rver on
# loopback, reached through a small logging proxy (node, like s3rver), this
# test captures (full, then incremental), lists, shows, verifies and cats
# the snapshots, restores them into a second sandbox and compares with
# kcat, restores a time window and checks in the proxy's request log that
# it fetched a small part of the segments' bytes, kills a capture with
# SIGKILL in the middle of a multipart upload (earlier snapshots intact, no
# new manifest, and a rerun completes), and prunes, checking that exactly
# the objects no remaining manifest references are deleted.
#
# s3rver is installed into $KT_BUILD_ROOT/s3rver on first use (s3lib.sh);
# without node or npm the test is skipped.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/s3lib.sh"

: "${S3_PROBE:?S3_PROBE must name the s3_probe binary (meson test sets it)}"
: "${KT_BUILD_ROOT:?KT_BUILD_ROOT must name the build directory (meson test sets it)}"
require_cmd node npm kcat jq

BUCKET=ktape-repo-test
start_s3rver "$BUCKET"

# The proxy (s3proxy.js) forwards every request to s3rver and logs one line
# per answer: METHOD PATH RANGE STATUS BODY_BYTES PART.  While $T/slow
# exists it holds each UploadPart for 2 s, so that a capture can be killed
# in mid-upload.
: >"$T/requests.log"
start_s3proxy --log "$T/requests.log" --slow-file "$T/slow"
note "s3rver on port $S3RVER_PORT, logging proxy on port $S3PROXY_PORT"

export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$S3PROXY_PORT"
export KTAPE_S3_PATH_STYLE=1
# Parts of 64 KiB (s3rver does not enforce S3's 5 MiB minimum), so that
# segments of a few hundred KiB are multipart uploads of several parts.
export KTAPE_S3_PART_SIZE=65536
unset AWS_SESSION_TOKEN AWS_DEFAULT_REGION AWS_ENDPOINT_URL_S3
PREFIX=backups/prod
REPO="s3://$BUCKET/$PREFIX"
probe() { "$S3_PROBE" --path-style "s3://$BUCKET/$PREFIX" "$@"; }
# Keys under the prefix (relative to it), one per line, sorted.
objects() { probe list | awk '{print $1}' | LC_ALL=C sort; }
snapshot_count() { "$KTAPE" ls -r "$REPO" --json | jq 'length'; }

# ---- a repository that does not exist yet --------------------------------
"$KTAPE" ls -r "$REPO" >/dev/null 2>"$T/nomarker.err" && fail "ls of an empty prefix succeeded"
grep -q "is not a ktape repository" "$T/nomarker.err" || fail "ls of an empty prefix: $(cat "$T/nomarker.err")"
pass "ls of an empty prefix fails as for a directory without marker"

# ---- full and incremental capture ------------------------------------------
start_sandbox -n 1 --topic orders:2 --topic audit:1
SRC=$BOOTSTRAP
"$KTAPE" gen -b "$SRC" -t orders -n 3000 --seed 11 --keys 80 --size 100-300 --ts-span 2h \
	>/dev/null || fail "gen orders"
"$KTAPE" gen -b "$SRC" -t audit -n 400 --seed 12 --tombstones 10% --headers 2 >/dev/null || fail "gen audit"
capture() {
	"$KTAPE" capture -b "$SRC" -r "$REPO" -t orders -t audit --block-size 8K --admin-timeout 500ms \
		--no-progress --json "$@"
}
capture >"$T/cap1.json" 2>"$T/cap1.err" || { cat "$T/cap1.err" >&2; fail "capture into $REPO failed"; }
[ "$(snapshot_count)" = 1 ] || fail "expected 1 snapshot after the first capture"
objects >"$T/objects1"
grep -qx "ktape-repository.json" "$T/objects1" || fail "no repository marker object"
[ "$(grep -c '\.kts$' "$T/objects1")" = 3 ] || fail "expected 3 segment objects: $(cat "$T/objects1")"
[ "$(grep -c '\.kti$' "$T/objects1")" = 3 ] || fail "expected 3 index objects"
grep -qx "lock" "$T/objects1" && fail "the lock object outlived the capture"
grep -q ' part$' "$T/requests.log" || fail "no segment was uploaded in parts"
pass "capture wrote marker, manifest, 3 segments (multipart) and 3 indexes, and released its lock"

"$KTAPE" gen -b "$SRC" -t orders -n 1000 --seed 13 --size 100-300 --ts-span 10m >/dev/null || fail "gen more"
capture >"$T/cap2.json" 2>"$T/cap2.err" || { cat "$T/cap2.err" >&2; fail "incremental capture failed"; }
[ "$(snapshot_count)" = 2 ] || fail "expected 2 snapshots"
"$KTAPE" show -r "$REPO" latest --json >"$T/show.json" || fail "show --json"
[ "$(jq -r .kind "$T/show.json")" = incremental ] || fail "the second snapshot is not incremental"
"$KTAPE" show -r "$REPO" >"$T/show.txt" || fail "show"
grep -q "partition 0: offsets \[0, " "$T/show.txt" || fail "show names no offsets: $(head -5 "$T/show.txt")"
pass "an incremental capture continues the first snapshot; ls and show read them"

# ---- verify and cat ----------------------------------------------------------
"$KTAPE" verify -r "$REPO" >"$T/verify.out" 2>&1 || { cat "$T/verify.out" >&2; fail "verify"; }
grep -q "clean" "$T/verify.out" || fail "verify did not say clean: $(cat "$T/verify.out")"
kcat_dump orders >"$T/orders.src"
kcat_dump audit >"$T/audit.src"
"$KTAPE" cat -r "$REPO" -t orders >"$T/orders.cat" || fail "cat orders"
expect_same "$T/orders.src" "$T/orders.cat"
pass "verify is clean and cat prints the records kcat reads from the source"
# Export and import work on local repositories only: refused, naming why,
# and nothing is created (not even a local directory named "s3:").
(cd "$T" && "$KTAPE" export -r "$REPO" -o "$T/x.tar" 2>"$T/export.err") && fail "export from $REPO ran"
grep -q "object storage is not implemented" "$T/export.err" || fail "export: $(cat "$T/export.err")"
(cd "$T" && "$KTAPE" import -r "$REPO" "$T/x.tar" 2>"$T/import.err") && fail "import into $REPO ran"
grep -q "object storage is not implemented" "$T/import.err" || fail "import: $(cat "$T/import.err")"
[ ! -e "$T/s3:" ] && [ ! -e "$T/x.tar" ] || fail "export or import left files behind"
pass "export and import refuse a repository on object storage, leaving nothing behind"

# ---- restore into a second cluster ----------------------------------------
# The sandbox reads the topics' layout from the snapshot itself (the mock
# cluster cannot create topics); "win" receives the time window below.
start_sandbox -n 1 --from-snapshot "$REPO" --topic win:2
DST=$BOOTSTRAP
# No restore records on object storage: a restore without --state-dir is
# refused, naming the option.
"$KTAPE" restore -b "$DST" -r "$REPO" >/dev/null 2>"$T/nostate.err" && fail "restore without --state-dir ran"
grep -q -- "--state-dir" "$T/nostate.err" || fail "the refusal does not name --state-dir: $(cat "$T/nostate.err")"
"$KTAPE" restore -b "$DST" -r "$REPO" --state-dir "$T/state" --json >"$T/restore.json" 2>"$T/restore.err" ||
	{ cat "$T/restore.err" >&2; fail "restore from $REPO failed"; }
BOOTSTRAP=$DST kcat_dump orders >"$T/orders.dst"
BOOTSTRAP=$DST kcat_dump audit >"$T/audit.dst"
expect_same "$T/orders.src" "$T/orders.dst"
expect_same "$T/audit.src" "$T/audit.dst"
pass "restore from object storage gives back the records kcat read from the source"

# ---- a time window fetches only its blocks ----------------------------------
from=$(jq -s '[.[] | select(.partition == 0) | .ts] | sort | .[700]' "$T/orders.src")
to=$(jq -s '[.[] | select(.partition == 0) | .ts] | sort | .[720]' "$T/orders.src")
jq -c --argjson f "$from" --argjson t "$to" 'select(.ts >= $f and .ts < $t)' "$T/orders.src" >"$T/win.want"
mark=$(wc -l <"$T/requests.log")
"$KTAPE" restore -b "$DST" -r "$REPO" -t orders --map orders=win --from-time "$from" --to-time "$to" \
	--state-dir "$T/state" --json >"$T/win.json" 2>"$T/win.err" ||
	{ cat "$T/win.err" >&2; fail "time window restore failed"; }
BOOTSTRAP=$DST kcat_dump win | jq -c '.topic = "orders"' >"$T/win.dst"
expect_same --ignore-offsets "$T/win.want" "$T/win.dst"
fetched=$(tail -n +$((mark + 1)) "$T/requests.log" | awk '$1 == "GET" && $2 ~ /\.kts$/ {n += $5} END {print n + 0}')
total=$(probe list segments/ | awk '$1 ~ /\.kts$/ {n += $2} END {print n + 0}')
note "the window of $(wc -l <"$T/win.want") records fetched $fetched of the segments' $total bytes"
[ "$fetched" -gt 0 ] && [ "$fetched" -lt $((total / 4)) ] ||
	fail "a narrow time window fetched $fetched of $total segment bytes"
pass "a time-window restore fetched $fetched of $total segment bytes by ranged GETs"

# ---- a capture killed in the middle of an upload ---------------------------
"$KTAPE" gen -b "$SRC" -t orders -n 4000 --seed 14 --size 300-600 --ts-span 10m >/dev/null || fail "gen for the kill"
objects >"$T/objects.before"
probe list snapshots/ >"$T/manifests.before"
touch "$T/slow"
mark=$(wc -l <"$T/requests.log")
# The binary itself in the background, not the capture function: the kill
# must hit ktape, not a subshell.
"$KTAPE" capture -b "$SRC" -r "$REPO" -t orders -t audit --block-size 8K --admin-timeout 500ms \
	--no-progress >/dev/null 2>"$T/killed.err" &
cap_pid=$!
parts_done() { tail -n +$((mark + 1)) "$T/requests.log" | grep -q ' part$'; }
wait_until 60 parts_done
kill -KILL "$cap_pid"
wait "$cap_pid" 2>/dev/null || true
rm -f "$T/slow"
probe list snapshots/ >"$T/manifests.after"
cmp -s "$T/manifests.before" "$T/manifests.after" || fail "the killed capture changed snapshots/"
[ "$(snapshot_count)" = 2 ] || fail "the killed capture left $(snapshot_count) snapshots"
"$KTAPE" verify -r "$REPO" >"$T/verify2.out" 2>&1 || { cat "$T/verify2.out" >&2; fail "verify after the kill"; }
pass "a capture killed mid-upload left no manifest, and both snapshots still verify"
# Its lock object stays behind; a rerun on this host sees its holder is dead.
capture >"$T/cap3.json" 2>"$T/cap3.err" || { cat "$T/cap3.err" >&2; fail "the rerun after the kill failed"; }
[ "$(snapshot_count)" = 3 ] || fail "the rerun did not commit a snapshot"
BOOTSTRAP=$SRC kcat_dump orders >"$T/orders.src3"
"$KTAPE" cat -r "$REPO" -t orders >"$T/orders.cat3" || fail "cat after the rerun"
expect_same "$T/orders.src3" "$T/orders.cat3"
pass "the rerun took over the dead capture's lock and completed the snapshot"

# ---- prune deletes exactly the unreferenced objects ----------------------------
# Plant an orphan pair and a file prune must not judge.
head -c 1000 /dev/urandom >"$T/junk"
probe put segments/orders/0/00000000000000000000-00000000deadbeef.kts "$T/junk" || fail "put orphan"
probe put segments/orders/0/00000000000000000000-00000000deadbeef.kti "$T/junk" || fail "put orphan index"
probe put segments/README "$T/junk" || fail "put README"
objects >"$T/objects.pre"
"$KTAPE" prune -r "$REPO" --keep-last 1 >"$T/prune.out" 2>&1 || { cat "$T/prune.out" >&2; fail "prune"; }
[ "$(snapshot_count)" = 1 ] || fail "prune --keep-last 1 left $(snapshot_count) snapshots"
latest=$("$KTAPE" ls -r "$REPO" --json | jq -r '.[0].id')
"$KTAPE" show -r "$REPO" "$latest" --json | jq -r '.. | objects | .path? // empty' | LC_ALL=C sort >"$T/refs"
# Expected: the two dropped manifests, and every .kts/.kti no remaining
# manifest references.
{
	grep '^snapshots/' "$T/objects.pre" | grep -vx "snapshots/$latest.json"
	grep -E '^segments/.*\.kt[si]$' "$T/objects.pre" | while read -r key; do
		grep -qx "${key%.kt?}.kts" "$T/refs" || echo "$key"
	done
} | LC_ALL=C sort >"$T/expect.deleted"
objects >"$T/objects.post"
LC_ALL=C comm -23 "$T/objects.pre" "$T/objects.post" >"$T/deleted"
diff "$T/expect.deleted" "$T/deleted" >"$T/prune.diff" ||
	fail "prune deleted other objects than the unreferenced ones: $(cat "$T/prune.diff")"
grep -q deadbeef "$T/deleted" || fail "the planted orphan survived"
grep -qx "segments/README" "$T/objects.post" || fail "prune deleted an object that is not a segment"
"$KTAPE" verify -r "$REPO" >"$T/verify3.out" 2>&1 || { cat "$T/verify3.out" >&2; fail "verify after prune"; }
"$KTAPE" cat -r "$REPO" -t orders >"$T/orders.cat4" || fail "cat after prune"
expect_same "$T/orders.src3" "$T/orders.cat4"
pass "prune deleted exactly the $(wc -l <"$T/deleted") unreferenced objects; the kept snapshot verifies"
