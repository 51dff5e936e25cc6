# The farm's other services (docker/compose.yaml), from Debian 12 packages, so nothing installs at
# start: one stage per service, built with --target.
#   balancer  HAProxy 2.6 (TCP, send-proxy-v2, health checks on the instances' /readyz)
#   mailbox   Postfix qmqpd delivering into Maildirs (main.cf/master.cf from docker/mailbox/)
#   directory OpenLDAP slapd seeded from docker/slapd/
#   dnsbl     rbldnsd serving the zones mounted at /zones
#   sigupdate freshclam, or a local mirror of signatures delivered by other means (sigupdate.sh)
#   spamengine rspamd 3.4 (the stock config + docker/rspamd/), scanned by the instances' rspamd filter
#   state     redis-server 7.0: rspamd's Bayes and other state, shared by every rspamd instance
#   docker build -f docker/farm.Dockerfile --target mailbox -t mxfront-mailbox .
FROM debian:12 AS farm-base
RUN rm -f /etc/apt/apt.conf.d/docker-clean \
    && echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections

FROM farm-base AS balancer
RUN --mount=type=cache,target=/var/cache/apt \
    --mount=type=cache,target=/var/lib/apt/lists \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy
COPY docker/haproxy/haproxy.cfg /etc/haproxy/haproxy.cfg
STOPSIGNAL SIGUSR1
# -W master-worker, -db foreground; SIGUSR1 = soft stop (established SMTP sessions finish)
CMD ["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]

FROM farm-base AS mailbox
RUN --mount=type=cache,target=/var/cache/apt \
    --mount=type=cache,target=/var/lib/apt/lists \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix
COPY docker/mailbox/main.cf docker/mailbox/master.cf /etc/postfix/
COPY docker/mailbox/start.sh /usr/local/bin/mailbox-start
RUN postfix set-permissions >/dev/null 2>&1; postfix check
EXPOSE 628
CMD ["/usr/local/bin/mailbox-start"]

FROM farm-base AS directory
RUN --mount=type=cache,target=/var/cache/apt \
    --mount=type=cache,target=/var/lib/apt/lists \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slapd ldap-utils \
    && rm -rf /var/lib/ldap/* /etc/ldap/slapd.d   # the package's dc=nodomain database: ours is seeded at start
COPY docker/slapd/ /etc/ldap-seed/
EXPOSE 389
CMD ["/etc/ldap-seed/start.sh"]

FROM farm-base AS dnsbl
RUN --mount=type=cache,target=/var/cache/apt \
    --mount=type=cache,target=/var/lib/apt/lists \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rbldnsd
COPY docker/rbldnsd/ /zones/
EXPOSE 53/udp
# As root it binds port 53, then drops to the rbldns user; zones are re-read when they change.
CMD ["rbldnsd", "-n", "-r", "/zones", "-b", "0.0.0.0/53", "-c", "10", "local.bl:ip4set:local.bl", "local.dbl:dnset:local.dbl"]

FROM farm-base AS sigupdate
RUN --mount=type=cache,target=/var/cache/apt \
    --mount=type=cache,target=/var/lib/apt/lists \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clamav-freshclam ca-certificates
COPY docker/sigupdate/sigupdate.sh /usr/local/bin/sigupdate
HEALTHCHECK --interval=5s --timeout=3s --start-period=600s CMD ["/usr/local/bin/sigupdate", "--check"]
CMD ["/usr/local/bin/sigupdate"]

FROM farm-base AS spamengine
RUN --mount=type=cache,target=/var/cache/apt \
    --mount=type=cache,target=/var/lib/apt/lists \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rspamd
COPY docker/rspamd/local.d/ /etc/rspamd/local.d/
COPY docker/rspamd/override.d/ /etc/rspamd/override.d/
COPY docker/rspamd/start.sh /usr/local/bin/spamengine-start
RUN rspamadm configtest && mkdir -p /etc/rspamd/dkim-keys
EXPOSE 11333 11334
# start.sh copies the DKIM keys mounted at /etc/rspamd/dkim-keys (none: nothing is signed) for
# _rspamd; rspamd starts as root, binds, and runs its workers (the fuzzy storage on 127.0.0.1:11335
# among them) as _rspamd; /run/rspamd holds its pid file.
CMD ["/usr/local/bin/spamengine-start"]

FROM farm-base AS state
RUN --mount=type=cache,target=/var/cache/apt \
    --mount=type=cache,target=/var/lib/apt/lists \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server
USER redis
EXPOSE 6379
# Reachable on the farm network only (no published port); snapshots to the volume at /var/lib/redis.
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/var/lib/redis", "--save", "300 10", "--appendonly", "no"]
