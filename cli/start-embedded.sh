#!/usr/bin/env bash
# `npm start`: the signer on its embedded default (SoftHSM2 token, keys and SQLite under ./data), on a fresh
# Debian machine. Installs what is missing — system packages with apt-get (as root, or through sudo), npm
# dependencies with `npm ci` — or says exactly what to install. Extra arguments go to `vigil signer start`,
# e.g. `npm start -- --network minimal-devnet --keys 8`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[ -e /usr/lib/softhsm/libsofthsm2.so ] || missing+=(softhsm2)
command -v make >/dev/null || missing+=(make)
command -v g++ >/dev/null || missing+=(g++)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
    echo "vigil: missing system packages: ${missing[*]}; install them with: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "vigil: installing system packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ]; then
  echo "vigil: installing npm dependencies (npm ci; native modules compile, a few minutes the first time)" >&2
  npm ci --no-audit --no-fund >&2
elif [ ! -f dist/cli/main.js ] || [ -n "$(find cli common admin-api signer slashing-db watchdog -name '*.ts' -newer dist/cli/main.js -print -quit)" ]; then
  npm run --silent build >&2
fi

# Decrypted keys live in the signer's memory: no core dump may ever write them to disk (the CLI checks too).
ulimit -c 0
exec node bin/vigil.js signer start --embedded "$@"
