#!/bin/sh
# The mailbox service: Postfix (qmqpd on 628) in the foreground, Maildirs under /var/mail/vhosts
# (a volume, owned by the virtual(8) delivery user).
set -e
install -d -o nobody -g nogroup /var/mail/vhosts
postfix check
exec postfix start-fg
