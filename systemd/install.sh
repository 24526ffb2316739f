#!/usr/bin/env bash
# Installs Vigil from this checkout as systemd services, or upgrades an installation. Idempotent: running it
# again changes nothing that is already right, and never overwrites the operator's config or credentials.
#
#   sudo systemd/install.sh              install or upgrade (then: systemctl restart vigil-signer …)
#   sudo systemd/install.sh --root DIR   the same into DIR instead of / (image builds, tests)
#   sudo systemd/install.sh --rollback   switch back to the previous release (and its units); see README.md
#
# What it does (systemd/README.md has the full picture, upgrade and rollback):
#   users      vigil-signer, vigil-watchdog (system users, no login shell, no supplementary groups)
#   code       /opt/vigil/releases/<version>-<commit>/ (root-owned, read-only to the services),
#              /opt/vigil/current → that release, /opt/vigil/previous → the one before (for rollback)
#   units      /usr/local/lib/systemd/system/vigil-{signer,signer@,watchdog,slashing-prune}.service, …prune.timer
#   config     /etc/vigil/{signer.json,watchdog.json,softhsm2.conf} (created only if missing; the shipped
#              versions are always refreshed as *.example beside them)
#   secrets    /etc/vigil/credentials/ (root, 0700): admin-token (generated if missing); hsm-pin (yours)
#   state      /var/lib/vigil/signer (vigil-signer, 0700), /var/lib/vigil/watchdog (vigil-watchdog, 0700)
#   admin      /usr/local/sbin/vigil-signer-admin: runs `vigil keys …`/`vigil hsm …` as the signer would
#   polkit     /etc/polkit-1/rules.d/50-vigil-watchdog.rules (created only if missing)
set -euo pipefail
umask 022

SRC=$(cd "$(dirname "$0")/.." && pwd)
ROOT=/
ROLLBACK=0
while (($#)); do
  case "$1" in
    --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
    --rollback) ROLLBACK=1; shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
ROOT=$(cd "$ROOT" && pwd)
R=${ROOT%/} # prefix for every path; empty for /

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "  $*"; }

[[ $(id -u) == 0 ]] || die "run as root (sudo $0)"

reload_systemd() {
  if [[ -z "$R" && -d /run/systemd/system ]]; then systemctl daemon-reload && say "systemctl daemon-reload done"; fi
}

if ((ROLLBACK)); then
  # Swap current and previous; the units come from the release being switched to, so they match its code.
  PREV=$(readlink "$R/opt/vigil/previous" 2>/dev/null) || die "no previous release to roll back to (/opt/vigil/previous)"
  CUR=$(readlink "$R/opt/vigil/current" 2>/dev/null) || die "no current release (/opt/vigil/current)"
  [[ -f "$R/opt/vigil/$PREV/bin/vigil.js" ]] || die "previous release /opt/vigil/$PREV is incomplete"
  ln -sfnT "$PREV" "$R/opt/vigil/current.new" && mv -T "$R/opt/vigil/current.new" "$R/opt/vigil/current"
  ln -sfnT "$CUR" "$R/opt/vigil/previous"
  for unit in vigil-signer.service vigil-signer@.service vigil-watchdog.service vigil-slashing-prune.service vigil-slashing-prune.timer; do
    [[ -f "$R/opt/vigil/$PREV/systemd/$unit" ]] && install -m 0644 -o 0 -g 0 "$R/opt/vigil/$PREV/systemd/$unit" "$R/usr/local/lib/systemd/system/$unit"
  done
  say "/opt/vigil/current → $PREV (previous: $CUR)"
  reload_systemd
  echo "Now: systemctl restart vigil-signer vigil-watchdog. If the signer refuses its database as \"newer\", read"
  echo "systemd/README.md, \"Rollback\": never restore an older copy of the slashing database."
  exit 0
fi
[[ -f "$SRC/dist/cli/main.js" && -d "$SRC/node_modules" ]] || die "build the checkout first: (cd $SRC && npm ci)"
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
((NODE_MAJOR >= 20)) || die "Node.js 20 or newer is required (found: $(node --version 2>/dev/null || echo none))"

echo "== users"
ensure_user() { # name, home, comment
  if grep -q "^$1:" "$R/etc/passwd" 2>/dev/null; then say "user $1 exists"; return; fi
  local prefix=(); [[ -n "$R" ]] && prefix=(--prefix "$ROOT")
  useradd "${prefix[@]}" --system --user-group --home-dir "$2" --no-create-home --shell /usr/sbin/nologin --comment "$3" "$1"
  say "created user $1"
}
ensure_user vigil-signer /var/lib/vigil/signer "Vigil remote signer"
ensure_user vigil-watchdog /var/lib/vigil/watchdog "Vigil watchdog"
# Numeric ids from the target's own passwd, so --root works without the users existing on this host.
uid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$R/etc/passwd"; }
gid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$R/etc/group"; }
SIGNER_UID=$(uid_of vigil-signer); SIGNER_GID=$(gid_of vigil-signer)
WATCHDOG_UID=$(uid_of vigil-watchdog); WATCHDOG_GID=$(gid_of vigil-watchdog)

# dir path mode uid gid: creates or corrects (owners and modes are re-applied on every run).
dir() { install -d -m "$2" -o "$3" -g "$4" "$R$1"; }

echo "== directories"
dir /etc/vigil 0755 0 0
dir /etc/vigil/credentials 0700 0 0
dir /var/lib/vigil 0755 0 0
dir /var/lib/vigil/signer 0700 "$SIGNER_UID" "$SIGNER_GID"
dir /var/lib/vigil/signer/softhsm 0700 "$SIGNER_UID" "$SIGNER_GID"
dir /var/lib/vigil/signer/softhsm/tokens 0700 "$SIGNER_UID" "$SIGNER_GID"
dir /var/lib/vigil/watchdog 0700 "$WATCHDOG_UID" "$WATCHDOG_GID"
dir /opt/vigil/releases 0755 0 0
say "/etc/vigil, /var/lib/vigil/{signer,watchdog}, /opt/vigil"

echo "== release"
VERSION=$(node -p 'require(process.argv[1]).version' "$SRC/package.json")
COMMIT=$(git -C "$SRC" rev-parse --short=12 HEAD 2>/dev/null || echo local)
[[ "$COMMIT" != local && -n "$(git -C "$SRC" status --porcelain --untracked-files=no 2>/dev/null)" ]] && COMMIT="$COMMIT-modified"
RELEASE="$VERSION-$COMMIT"
REL_DIR="$R/opt/vigil/releases/$RELEASE"
STAGE=$(mktemp -d "$R/opt/vigil/releases/.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
# Only what runs: compiled code, dependencies, the launcher, the docs. No sources, tests or dev tools.
tar -C "$SRC" --exclude=dist/test --exclude='*.map' -cf - \
  bin dist package.json package-lock.json README.md systemd | tar -C "$STAGE" -xf -
# node_modules by content, even where the checkout's is a symlink: the release must not point into it.
mkdir "$STAGE/node_modules"
tar -C "$(cd -P "$SRC/node_modules" && pwd)" --exclude='*.map' --exclude=./.cache -cf - . | tar -C "$STAGE/node_modules" -xf -
# Dev-only packages go by the lock file's own flags: no npm, no registry, so a cold npm cache cannot make
# the release keep them. A failure here stops the install rather than ship an unchecked tree.
node "$SRC/systemd/prune-dev-deps.mjs" "$STAGE" >/dev/null || die "could not reduce node_modules to the production dependencies"
chown -R 0:0 "$STAGE"
chmod -R u=rwX,go=rX "$STAGE"
if [[ -d "$REL_DIR" ]] && diff -rq "$REL_DIR" "$STAGE" >/dev/null 2>&1; then
  say "release $RELEASE already installed, unchanged"
else
  # A modified checkout of the same commit replaces the release; the old copy goes only after the new is in.
  [[ -d "$REL_DIR" ]] && mv -T "$REL_DIR" "$REL_DIR.replaced.$$"
  mv -T "$STAGE" "$REL_DIR"
  rm -rf "$REL_DIR.replaced.$$"
  say "installed release $RELEASE"
fi
rm -rf "$STAGE"
CURRENT=$(readlink "$R/opt/vigil/current" 2>/dev/null || true)
if [[ "$CURRENT" != "releases/$RELEASE" ]]; then
  [[ -n "$CURRENT" ]] && ln -sfnT "$CURRENT" "$R/opt/vigil/previous" && say "previous release: ${CURRENT#releases/}"
  # Atomic switch: a new symlink renamed over the old one.
  ln -sfnT "releases/$RELEASE" "$R/opt/vigil/current.new" && mv -T "$R/opt/vigil/current.new" "$R/opt/vigil/current"
  say "/opt/vigil/current → releases/$RELEASE"
fi

echo "== units"
UNIT_DIR="$R/usr/local/lib/systemd/system"
install -d -m 0755 "$UNIT_DIR"
for unit in vigil-signer.service vigil-signer@.service vigil-watchdog.service vigil-slashing-prune.service vigil-slashing-prune.timer; do
  # Shipped units are replaced on upgrade; site changes belong in drop-ins (systemctl edit <unit>).
  install -m 0644 -o 0 -g 0 "$SRC/systemd/$unit" "$UNIT_DIR/$unit"
  say "$UNIT_DIR/$unit"
done
install -d -m 0755 "$R/usr/local/sbin"
install -m 0755 -o 0 -g 0 "$SRC/systemd/vigil-signer-admin" "$R/usr/local/sbin/vigil-signer-admin"

echo "== configuration"
EDIT=()
config() { # file group: the example is refreshed; the live file is created once and then left alone
  local src="$SRC/systemd/etc/$1" dst="$R/etc/vigil/$1"
  install -m 0644 -o 0 -g 0 "$src" "$dst.example"
  if [[ -e "$dst" ]]; then
    say "kept /etc/vigil/$1$(cmp -s "$src" "$dst" || echo " (differs from $1.example: review after upgrades)")"
  else
    install -m 0640 -o 0 -g "$2" "$src" "$dst"
    say "created /etc/vigil/$1"
    EDIT+=("/etc/vigil/$1")
  fi
}
config signer.json "$SIGNER_GID"
config softhsm2.conf "$SIGNER_GID"
config watchdog.json "$WATCHDOG_GID"

echo "== credentials"
if [[ ! -e "$R/etc/vigil/credentials/admin-token" ]]; then
  (umask 077 && head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' > "$R/etc/vigil/credentials/admin-token" && echo >> "$R/etc/vigil/credentials/admin-token")
  say "generated /etc/vigil/credentials/admin-token (the signer's admin API; the watchdog holds it too)"
else
  say "kept /etc/vigil/credentials/admin-token"
fi
chown 0:0 "$R/etc/vigil/credentials/admin-token"; chmod 0600 "$R/etc/vigil/credentials/admin-token"
if [[ -e "$R/etc/vigil/credentials/hsm-pin" ]]; then
  chown 0:0 "$R/etc/vigil/credentials/hsm-pin"; chmod 0600 "$R/etc/vigil/credentials/hsm-pin"
  say "kept /etc/vigil/credentials/hsm-pin"
  PIN_MISSING=0
else
  say "missing /etc/vigil/credentials/hsm-pin (the HSM user PIN; see below)"
  PIN_MISSING=1
fi

echo "== polkit (lets the watchdog start and stop the validator client units it fails over between)"
RULES="$R/etc/polkit-1/rules.d/50-vigil-watchdog.rules"
if [[ -e "$RULES" ]]; then
  say "kept $RULES"
else
  install -d -m 0755 "$(dirname "$RULES")"
  install -m 0644 -o 0 -g 0 "$SRC/systemd/polkit/50-vigil-watchdog.rules" "$RULES"
  say "created $RULES"
  EDIT+=("/etc/polkit-1/rules.d/50-vigil-watchdog.rules")
fi

reload_systemd

cat <<EOF

Vigil $RELEASE is installed.
EOF
if ((${#EDIT[@]})); then
  echo "Edit before the first start:"
  for f in "${EDIT[@]}"; do
    case "$f" in
      */signer.json) echo "  $f: network, listen address, clients (one listener port or token per validator client), hsm module and token label" ;;
      */watchdog.json) echo "  $f: chain timing, validator indices, both stacks' beacon nodes and service units" ;;
      */softhsm2.conf) echo "  $f: only with SoftHSM2; with a hardware HSM set hsm.module in signer.json instead" ;;
      *.rules) echo "  $f: the validator client units the watchdog may start and stop" ;;
    esac
  done
fi
if ((PIN_MISSING)); then
  cat <<'EOF'
Set the HSM user PIN (read by systemd, handed to the signer as a credential; never in a config file):
  install -m 0600 /dev/null /etc/vigil/credentials/hsm-pin && editor /etc/vigil/credentials/hsm-pin
With SoftHSM2, create the token as the signer's user first (user PIN from that file; no PIN on a command line):
  vigil-signer-admin vigil hsm create-token --so-pin-file /var/lib/vigil/signer/so.pin
EOF
fi
cat <<'EOF'
Then, as root:
  vigil-signer-admin vigil hsm init                     # wrapping key on the token
  vigil-signer-admin vigil keys import --keystores DIR  # DIR readable by vigil-signer, e.g. /var/lib/vigil/signer/import
  systemctl enable --now vigil-signer.service vigil-slashing-prune.timer
  systemctl enable --now vigil-watchdog.service         # where the watchdog runs
  systemctl status vigil-signer                         # STATUS= shows what it is doing
After an upgrade: systemctl restart vigil-signer vigil-watchdog. Rollback: systemd/README.md.
EOF
