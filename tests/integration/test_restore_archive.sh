#!/usr/bin/env bash
# A restore needs no writable repository: straight from an exported
# (uncompressed) archive, its record goes beside the archive; from a
# read-only repository, --state-dir names where it goes, and without it
# the error says so.  kcat judges the result.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/fixtures.sh"
require_cmd kcat

# Unmount the read-only bind mount, if any, before lib.sh's cleanup.
RO_MOUNTED=0
_ro_cleanup() {
	local rc=$?
	set +e
	[ "$RO_MOUNTED" = 1 ] && { umount "$REPO" 2>/dev/null || umount -l "$REPO"; }
	(exit "$rc")
	_kt_cleanup
}
trap _ro_cleanup EXIT
ro_mount() { mount --bind "$REPO" "$REPO" && RO_MOUNTED=1 && mount -o remount,bind,ro "$REPO"; }
ro_umount() { umount "$REPO" && RO_MOUNTED=0; }

start_sandbox -n 1 --topic outbox_events:2
"$KTAPE" gen -b "$BOOTSTRAP" -t outbox_events -n 600 --seed 71 --keys 50 --headers 2 \
	--binary 10% >/dev/null || fail "gen failed"
kcat_dump outbox_events >"$T/src.dump"
REPO=$T/repo
"$KTAPE" capture -b "$BOOTSTRAP" -r "$REPO" -t outbox_events --admin-timeout 300ms --no-progress \
	>/dev/null 2>"$T/capture.err" || { cat "$T/capture.err" >&2; fail "capture failed"; }
"$KTAPE" export -r "$REPO" -o "$T/snap.tar" 2>/dev/null || fail "export failed"

# From the archive, read in place: the record lands in snap.tar.restores.
start_sandbox -n 1 --from-snapshot "$T/snap.tar"
"$KTAPE" restore -b "$BOOTSTRAP" -r "$T/snap.tar" --no-progress >/dev/null 2>"$T/tar.err" ||
	{ cat "$T/tar.err" >&2; fail "restore from the archive failed"; }
kcat_dump outbox_events >"$T/dst.dump"
expect_same "$T/src.dump" "$T/dst.dump"
[ -d "$T/snap.tar.restores" ] || fail "no restore record beside the archive"
# Rerunning the same restore resumes it and sends nothing more.
"$KTAPE" restore -b "$BOOTSTRAP" -r "$T/snap.tar" --no-progress >/dev/null 2>&1 ||
	fail "rerunning the archive restore failed"
[ "$(kcat_dump outbox_events | wc -l)" -eq "$(wc -l <"$T/src.dump")" ] ||
	fail "a rerun of a finished archive restore sent records again"
pass "restore straight from an archive, record beside it, rerun sends nothing"

# From a read-only repository: refused with the way out, then done with it.
if ro_mount 2>/dev/null; then
	start_sandbox -n 1 --from-snapshot "$REPO"
	set +e
	"$KTAPE" restore -b "$BOOTSTRAP" -r "$REPO" --no-progress >/dev/null 2>"$T/ro.err"
	rc=$?
	set -e
	ro_umount
	[ "$rc" -ne 0 ] || fail "a restore from a read-only repository without --state-dir exited 0"
	grep -q -- "--state-dir" "$T/ro.err" || fail "the error does not name --state-dir: $(cat "$T/ro.err")"
	[ "$(kcat_dump outbox_events | wc -l)" -eq 0 ] || fail "records were sent before the refusal"
	ro_mount
	"$KTAPE" restore -b "$BOOTSTRAP" -r "$REPO" --state-dir "$T/state" --no-progress >/dev/null 2>"$T/ro2.err" ||
		{ cat "$T/ro2.err" >&2; fail "restore with --state-dir failed"; }
	ro_umount
	kcat_dump outbox_events >"$T/ro.dump"
	expect_same "$T/src.dump" "$T/ro.dump"
	pass "a read-only repository restores with --state-dir, and says so without it"
else
	[ "$RO_MOUNTED" = 0 ] || ro_umount
	note "bind mounts are not permitted here: the read-only case is not tested"
fi
