#!/bin/sh
# The image's entrypoint. With arguments it runs `mxfront ARGS` (e.g. --config FILE). Without, it
# runs the default config, /etc/mxfront/mxfront.toml — or mxfront-clamav.toml (the same plus the
# clamav filter) when that file is the image's own and signatures are mounted at /var/lib/clamav.
set -e
if [ $# -eq 0 ]; then
  config=/etc/mxfront/mxfront.toml
  if [ -f /etc/mxfront/mxfront-clamav.toml ] && cmp -s /etc/mxfront/mxfront.toml /etc/mxfront/.image-default.toml &&
     ls /var/lib/clamav/ 2>/dev/null | grep -Eq '\.(cvd|cld|cud|hdb|hsb|mdb|msb|ndb|ldb|cdb|ign2|fp|sfp|yar|yara)$'; then
    config=/etc/mxfront/mxfront-clamav.toml
  fi
  set -- --config "$config"
fi
exec /usr/local/bin/mxfront "$@"
