#!/bin/sh
# Creates a throw-away SoftHSM2 configuration (token directory under a fresh temp dir) and prints the
# path of its softhsm2.conf, for SOFTHSM2_CONF in the npm test script. Tokens never touch /var/lib.
set -eu
dir=$(mktemp -d "${TMPDIR:-/tmp}/vigil-softhsm.XXXXXX")
mkdir -m 700 "$dir/tokens"
cat > "$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
echo "$dir/softhsm2.conf"
