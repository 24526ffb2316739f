#!/bin/sh
# The watchdog's service commands for a validator client process in the e2e devnet (instead of systemctl).
#   vc-service.sh status PID   prints active / stopped / inactive; exit 0 only when running (as systemctl is-active)
#   vc-service.sh unreachable  a stop that cannot reach the host: fails, so only the signer's fence protects
#   vc-service.sh start PID    the backup client already runs (hot standby, fenced at the signer): checks it
set -eu
case "$1" in
  status | start)
    state=$(sed 's/^.*) //' "/proc/$2/stat" 2>/dev/null | cut -d' ' -f1 || true)
    case "$state" in
      "") echo inactive; exit 3 ;;
      T | t) echo stopped; exit 3 ;;
      Z | X) echo dead; exit 3 ;;
      *) echo active; exit 0 ;;
    esac ;;
  unreachable) echo "ssh: connect to host primary: No route to host" >&2; exit 255 ;;
  *) echo "usage: $0 status|start PID | unreachable" >&2; exit 2 ;;
esac
