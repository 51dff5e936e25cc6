#!/usr/bin/env bash
# The test command (README, CI): installs what is missing, builds, and runs every test:
#   1. unit + integration tests (ctest, real Postfix/swaks/smtp-source/smtplib on loopback)
#   2. the same tests again (the fault soak included) with everything built under AddressSanitizer +
#      UndefinedBehaviorSanitizer (+ LeakSanitizer): any report aborts the process and fails its test
#   3. the concurrency-heavy tests (unit tests; relay, fault, TLS/AUTH, directory, clamav, ocr integration) under
#      ThreadSanitizer
#   4. a short libFuzzer run of each fuzz target (clang)
#   5. the container farm (ctest label `farm`, tests/deploy/test_container_farm.py): the image and the compose
#      farm built and run with podman (installed by install-deps.sh; a missing podman is a failure)
# Exits non-zero if anything fails; ends with one "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=$(nproc)

scripts/install-deps.sh || exit 1

passed=0; failed=0
failed_names=""; retried_names=""  # for the closing lines: what failed, and what passed only on its second try
LOG=$(mktemp /tmp/mxfront-ctest.XXXXXX)
EXCERPTS=$(mktemp /tmp/mxfront-failures.XXXXXX)  # the assertion lines of every failure, printed at the end
trap 'rm -f "$LOG" "$EXCERPTS"' EXIT
# step NAME CMD... : a build step counts as one failure if it fails; a test step adds the
# numbers from ctest's own summary line ("N% tests passed, F tests failed out of T").
step() {
  local name=$1; shift
  echo "=== $name"
  "$@" 2>&1 | tee "$LOG"
  local rc=${PIPESTATUS[0]}
  local summary; summary=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$LOG" | tail -1)
  if [ -n "$summary" ]; then
    local f t; f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$summary")
    t=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$summary")
    passed=$((passed + t - f)); failed=$((failed + f))
    [ "$rc" = 0 ] || [ "$f" != 0 ] || failed=$((failed + 1))
  elif [ "$rc" != 0 ]; then
    failed=$((failed + 1))
  fi
  # ctest's "The following tests FAILED:" rows name the final failures; a test with a "***Failed"
  # (or Timeout/Exception) row that is not among them passed on its second try (--repeat until-pass:2)
  local finals firsts t
  finals=$(sed -n '/The following tests FAILED:/,$p' "$LOG" | sed -nE 's/^[[:space:]]*[0-9]+ - ([^ ]+) .*/\1/p' | sort -u)
  firsts=$(grep -E 'Test +#[0-9]+: .*\*\*\*(Failed|Timeout|Exception)' "$LOG" | sed -E 's/.*Test +#[0-9]+: ([^ ]+) .*/\1/' | sort -u)
  for t in $finals; do failed_names+=" $t($name)"; done
  for t in $firsts; do excerpt "$t" "$name" >>"$EXCERPTS"; done
  for t in $firsts; do grep -qx "$t" <<<"$finals" || retried_names+=" $t($name)"; done
  echo "=== $name: $([ "$rc" = 0 ] && echo ok || echo FAILED)"
  return "$rc"
}

# excerpt TEST STEP: the lines that say why TEST failed (unittest's FAIL/ERROR headers and assertion
# messages, sanitizer reports, gtest failures) from its --output-on-failure block(s) in $LOG, so the
# reason is in the last lines of the run even when only its tail is kept.
excerpt() {
  echo "--- why $1 failed ($2):"
  awk -v t="$1" '
    $0 ~ ("Test +#[0-9]+: " t " .*\\*\\*\\*") { on = 1; next }
    on && /^ *(Start +[0-9]+: |[0-9]+\/[0-9]+ Test +#)/ { on = 0 }
    on' "$LOG" |
    grep -E '^(FAIL|ERROR):|Error:|Exception:|^[A-Za-z.]*Error|AddressSanitizer|LeakSanitizer|ThreadSanitizer|runtime error|\[  FAILED  \]|Failure$|Expected|Which is|^Ran [0-9]+ tests|^FAILED' |
    head -40
}

build_main() { scripts/build.sh; }
# Integration tests run real servers on a shared 2-core machine: a test that fails is run once more
# (--repeat until-pass:2). Its first failure stays in the log and is listed at the end ("passed on
# the second try"), so a flaky test is visible, never hidden; a test that fails twice fails the run.
REPEAT="--repeat until-pass:2"
run_ctest() { (cd build && ctest --output-on-failure $REPEAT -j1 -LE farm "$@"); }
build_asan() {
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMXFRONT_SANITIZE=ON >/dev/null &&
    ninja -C build-asan
}
run_asan() { (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                LSAN_OPTIONS=suppressions=$ROOT/tests/lsan.supp \
                ctest --output-on-failure $REPEAT -j"$JOBS" -E '^fuzz_' -LE farm); }  # the soak too: it found a use-after-free
build_tsan() {
  cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMXFRONT_TSAN=ON >/dev/null &&
    ninja -C build-tsan
}
run_tsan() { (cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp \
                ctest --output-on-failure $REPEAT -j"$JOBS" -R '^unit_|^integration_test_(relay|faults|tls_auth|directory|clamav|rbl|mx_chain|admin|ocr|ocr_farm|spf|dkim|dmarc|ratelimit|greylist|redis_sentinel|redis_chaos|redis_brakes|redis_tls|rspamd|rspamd_transport)$'); }
build_fuzz() {
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMXFRONT_FUZZ=ON >/dev/null &&
    ninja -C build-fuzz protocol_fuzz address_fuzz netstring_fuzz config_fuzz proxy_fuzz auth_fuzz dns_fuzz mime_fuzz image_fuzz dkim_fuzz dmarc_fuzz spf_fuzz
}
run_fuzz() { (cd build-fuzz && ctest --output-on-failure -R '^fuzz_'); }
run_farm() {
  if ! command -v podman >/dev/null; then
    echo "podman is missing (scripts/install-deps.sh installs it): the container farm cannot run"
    return 1
  fi
  (cd build && ctest --output-on-failure -L farm)
}

step "build" build_main && step "unit and integration tests" run_ctest
step "build (ASan+UBSan)" build_asan && step "all tests under ASan+UBSan" run_asan
step "build (TSan)" build_tsan && step "concurrency tests under ThreadSanitizer" run_tsan
step "build (fuzz, clang)" build_fuzz && step "fuzz smoke runs" run_fuzz
step "container farm (podman: image, compose farm, crash, drain, reloads)" run_farm

echo
[ -z "$retried_names" ] || echo "passed on the second try (flaky, see their first failure above):$retried_names"
[ ! -s "$EXCERPTS" ] || cat "$EXCERPTS"
[ -z "$failed_names" ] || echo "failed:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
