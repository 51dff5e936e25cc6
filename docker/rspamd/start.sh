#!/bin/sh
# The spamengine container's command: copies the DKIM signing keys from their read-only mount
# (/etc/rspamd/dkim-keys: a compose bind mount or a Kubernetes Secret, owned by root) to
# /var/lib/rspamd/dkim, readable by _rspamd only, then runs rspamd in the foreground (it binds as
# root and runs its workers as _rspamd).
set -eu
mkdir -p /run/rspamd && chown _rspamd:_rspamd /run/rspamd
install -d -o _rspamd -g _rspamd -m 0700 /var/lib/rspamd/dkim
rm -f /var/lib/rspamd/dkim/*.key
for key in /etc/rspamd/dkim-keys/*.key; do
  [ -f "$key" ] || continue
  install -o _rspamd -g _rspamd -m 0600 "$key" /var/lib/rspamd/dkim/
done
exec rspamd -f -u _rspamd -g _rspamd
