#!/bin/sh
# Seeds the directory on first start, then runs slapd in the foreground on port 389.
# The seed's password placeholders are filled in here, never committed as hashes:
#   @MXFRONT_BIND_PASSWORD@  cn=mxfront (the submission service's bind DN): the first line of
#                            /etc/ldap-seed/mxfront.secret (mount your own over it)
#   @USER_PASSWORD@          the seeded users: $SEED_USER_PASSWORD, or no usable password if unset
set -e
SEED=/etc/ldap-seed
install -d -o openldap -g openldap /run/slapd /var/lib/ldap
if [ ! -e /var/lib/ldap/.mxfront-seeded ]; then
  rm -f /var/lib/ldap/data.mdb /var/lib/ldap/lock.mdb
  bind_hash=$(slappasswd -s "$(head -n1 "$SEED/mxfront.secret")")
  if [ -n "${SEED_USER_PASSWORD:-}" ]; then user_hash=$(slappasswd -s "$SEED_USER_PASSWORD"); else user_hash='{SSHA}locked'; fi
  sed -e "s|@MXFRONT_BIND_PASSWORD@|$bind_hash|" -e "s|@USER_PASSWORD@|$user_hash|" "$SEED/seed.ldif" > /tmp/seed.ldif
  slapadd -q -f "$SEED/slapd.conf" -l /tmp/seed.ldif
  rm -f /tmp/seed.ldif
  chown -R openldap:openldap /var/lib/ldap
  touch /var/lib/ldap/.mxfront-seeded
fi
exec slapd -d 0 -u openldap -g openldap -f "$SEED/slapd.conf" -h "ldap:///"
