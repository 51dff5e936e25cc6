#!/bin/sh
# Seeds the directory on first start, then runs slapd in the foreground on port 389.
set -e
install -d -o openldap -g openldap /run/slapd /var/lib/ldap
if [ ! -e /var/lib/ldap/data.mdb ]; then
  slapadd -q -f /etc/ldap-seed/slapd.conf -l /etc/ldap-seed/seed.ldif
  chown -R openldap:openldap /var/lib/ldap
fi
exec slapd -d 0 -u openldap -g openldap -f /etc/ldap-seed/slapd.conf -h "ldap:///"
