#!/usr/bin/env bash
# ktape sandbox as a program: readiness on stdout and in the bootstrap file,
# control commands over the socket and stdin that really change what clients
# see, clean refusal of bad input (exit 2, never an abort), and exit 0 on
# SIGTERM and SIGINT.
. "$(dirname "$0")/lib.sh"
require_cmd kcat

# Bad input: exit 2 and a message naming the problem, nothing left running.
expect_bad() {
	local want=$1 out rc=0
	shift
	out=$(timeout 20 "$KTAPE" sandbox "$@" 2>&1 </dev/null) || rc=$?
	[ "$rc" -eq 2 ] || fail "ktape sandbox $*: exit $rc, want 2 ($out)"
	case $out in *"$want"*) ;; *) fail "ktape sandbox $*: message lacks '$want': $out" ;; esac
}
expect_bad "no partition count" --topic orders
expect_bad "not a legal topic name" --topic 'bad/name:3'
expect_bad "replication factor 4 exceeds" -n 3 --topic orders:3:4
expect_bad "given twice" --topic a:1 --topic a:2
expect_bad "--brokers" -n 0
expect_bad "unexpected argument" stray
printf '# topics\norders:3\n\nnot-a-spec\n' >"$T/topics.txt"
expect_bad "topics.txt:4" --topic-file "$T/topics.txt"
expect_bad "cannot open" --topic-file "$T/missing.txt"
touch "$T/not-a-socket"
expect_bad "not a socket" --control "$T/not-a-socket"
expect_bad "--from-snapshot" --from-snapshot "$T/no-repository"
pass "bad flags, topic specs and files refused with exit 2"

# A topic file, the bootstrap line on stdout and in the file.
printf '# comment\naudit:2\n  payments:6:2  \n' >"$T/topics.txt"
start_sandbox -n 2 --topic-file "$T/topics.txt" --topic extra:1
line=$(head -n 1 "$T/sandbox.1.out")
[ "$line" = "bootstrap=$BOOTSTRAP" ] || fail "stdout says '$line', bootstrap file says '$BOOTSTRAP'"
case $BOOTSTRAP in 127.0.0.1:*,127.0.0.1:*) ;; *) fail "bootstrap '$BOOTSTRAP' is not two loopback brokers" ;; esac
kcat -L -b "$BOOTSTRAP" >"$T/metadata.txt"
grep -q 'topic "payments" with 6 partitions' "$T/metadata.txt" || fail "payments: $(cat "$T/metadata.txt")"
grep -q 'topic "audit" with 2 partitions' "$T/metadata.txt" || fail "audit missing"
grep -q ' 2 brokers' "$T/metadata.txt" || fail "not 2 brokers"
pass "topics from file and flags created; bootstrap announced"

# A second sandbox on the same control socket is refused while the first lives.
expect_bad "another sandbox is listening" --control "$SANDBOX_CTL"

# Control commands over the socket.
[ "$(sandbox_ctl ping)" = ok ] || fail "ping"
[ "$(sandbox_ctl bootstrap)" = "ok $BOOTSTRAP" ] || fail "bootstrap over the socket"
out=$(sandbox_ctl broker down 7) && fail "broker 7 accepted: $out"
case $out in "error: no broker 7"*) ;; *) fail "broker 7: $out" ;; esac
out=$(sandbox_ctl frobnicate) && fail "unknown command accepted"
sandbox_ctl leader payments 5 1 >/dev/null || fail "leader move"
grep -q 'partition 5, leader 1' <(kcat -L -b "$BOOTSTRAP" -t payments) || fail "leader of payments/5 did not move"
pass "socket commands answer ok / error and move a leader"

# Injected errors reach clients: a non-retriable Produce error makes
# ktape gen fail with a delivery error; after it is consumed, producing works.
sandbox_ctl errors Produce TOPIC_AUTHORIZATION_FAILED TOPIC_AUTHORIZATION_FAILED \
	TOPIC_AUTHORIZATION_FAILED >/dev/null || fail "errors command"
out=$("$KTAPE" gen -b "$BOOTSTRAP" -t extra -n 3 -X linger.ms=0 -X batch.num.messages=1 2>&1) &&
	fail "produce succeeded despite injected errors: $out"
case $out in *"not acknowledged"*"authoriz"*) ;; *) fail "unexpected failure: $out" ;; esac
sandbox_ctl clear errors Produce >/dev/null
"$KTAPE" gen -b "$BOOTSTRAP" -t extra -n 3 >/dev/null || fail "produce after clear errors failed"
pass "injected Produce errors fail a producer; cleared, it works"

# Down brokers stop answering; up again, they serve.
for b in 1 2; do sandbox_ctl broker down $b >/dev/null; done
kcat -L -b "$BOOTSTRAP" -m 2 >/dev/null 2>&1 && fail "metadata answered with every broker down"
for b in 1 2; do sandbox_ctl broker up $b >/dev/null; done
wait_until 10 kcat -L -b "$BOOTSTRAP" -m 2
pass "broker down/up takes effect"

# Commands from stdin, answered on stdout; the sandbox keeps running at EOF.
"$KTAPE" sandbox --stdin --topic s:1 >"$T/stdin.out" 2>"$T/stdin.err" \
	< <(printf 'ping\ntopic create t2:3\nnonsense\n') &
pid=$!
KT_SANDBOX_PIDS+=("$pid")
wait_until 10 grep -q nonsense "$T/stdin.out"
sed -n 2,4p "$T/stdin.out" >"$T/answers"
printf 'ok\nok\nerror: unknown command '"'"'nonsense'"'"' (try '"'"'help'"'"')\n' | cmp -s - "$T/answers" ||
	fail "stdin answers: $(cat "$T/answers")"
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || fail "sandbox exited $rc after SIGINT"
pass "stdin commands answered; SIGINT exits 0"

stop_sandbox
[ ! -e "$SANDBOX_CTL" ] || fail "control socket left behind"
pass "SIGTERM exits 0 and removes the socket"
