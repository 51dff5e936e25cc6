#!/bin/sh
# The farm's signature updater: keeps /var/lib/clamav (a volume the mxfront instances mount
# read-only) current. Files appear whole (written beside, then renamed), so an instance never
# compiles a half-written database.
#   SIGUPDATE_SOURCE unset: freshclam as a daemon (checks 12 times a day; needs the ClamAV mirrors).
#   SIGUPDATE_SOURCE=/dir:  a local mirror: every SIGUPDATE_INTERVAL seconds (default 10) the
#                           signature files of /dir are copied in and files gone from it removed
#                           (sites that get signatures by other means; the farm test).
#   sigupdate --check:      exit 0 once the directory holds a signature file (the HEALTHCHECK; the
#                           instances must not start before, an empty directory is a config error).
set -eu
DB=/var/lib/clamav
PATTERN='\.(cvd|cld|cud|hdb|hsb|mdb|msb|ndb|ldb|cdb|ign2|fp|sfp|yar|yara)$'
if [ "${1:-}" = "--check" ]; then
  ls "$DB" | grep -Eq "$PATTERN"
  exit $?
fi
if [ -z "${SIGUPDATE_SOURCE:-}" ]; then
  chown clamav "$DB"
  exec freshclam -d --foreground --checks=12
fi
sync_once() {
  for f in "$SIGUPDATE_SOURCE"/*; do
    [ -f "$f" ] || continue
    n=$(basename "$f")
    echo "$n" | grep -Eq "$PATTERN" || continue
    if ! cmp -s "$f" "$DB/$n"; then
      cp "$f" "$DB/.$n.new" && chmod 0644 "$DB/.$n.new" && mv -f "$DB/.$n.new" "$DB/$n"
      echo "sigupdate: updated $n"
    fi
  done
  for f in "$DB"/*; do
    [ -f "$f" ] || continue
    n=$(basename "$f")
    if [ ! -e "$SIGUPDATE_SOURCE/$n" ] && echo "$n" | grep -Eq "$PATTERN"; then
      rm -f "$f" && echo "sigupdate: removed $n"
    fi
  done
}
trap 'exit 0' TERM INT
while :; do
  sync_once
  sleep "${SIGUPDATE_INTERVAL:-10}" &
  wait $!
done
