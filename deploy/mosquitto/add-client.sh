#!/bin/sh
# Adds a device or a requester to the broker's password file and ACL.
#   add-client.sh [--dir DIR] device DEVICE_ID PASSWORD
#   add-client.sh [--dir DIR] requester NAME PASSWORD
# DIR (default /etc/mosquitto/splitinfer) holds `passwords` and `acl`;
# reload mosquitto afterwards (kill -HUP, or systemctl reload mosquitto).
set -eu
dir=/etc/mosquitto/splitinfer
if [ "${1:-}" = "--dir" ]; then dir=$2; shift 2; fi
if [ $# -ne 3 ]; then
  echo "usage: $0 [--dir DIR] device|requester NAME PASSWORD" >&2
  exit 2
fi
kind=$1 name=$2 password=$3
case "$name" in
  *[!A-Za-z0-9._-]*|'') echo "$0: '$name' must be letters, digits, '.', '_' or '-' (it becomes a topic level and the client id)" >&2; exit 2 ;;
esac
if grep -qx "user $name" "$dir/acl" 2>/dev/null; then
  echo "$0: $name is already in $dir/acl" >&2
  exit 1
fi
touch "$dir/passwords"
mosquitto_passwd -b "$dir/passwords" "$name" "$password"
case "$kind" in
  device)
    cat >> "$dir/acl" <<BLOCK

user $name
topic read splitinfer/v1/$name/req
topic write splitinfer/v1/$name/res
topic write splitinfer/v1/$name/status
topic write splitinfer/v1/$name/telemetry
topic write replies/#
BLOCK
    ;;
  requester)
    cat >> "$dir/acl" <<BLOCK

user $name
topic write splitinfer/v1/+/req
topic read replies/$name/#
topic read splitinfer/v1/+/status
topic read splitinfer/v1/+/telemetry
BLOCK
    ;;
  *)
    echo "$0: the kind is 'device' or 'requester', not '$kind'" >&2
    exit 2
    ;;
esac
echo "added $kind $name to $dir/passwords and $dir/acl"
