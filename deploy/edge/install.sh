#!/bin/sh
# Installs, upgrades, rolls back or removes the splitinfer edge agent as the
# systemd service splitinfer-edge, from the unpacked bundle this script is in.
set -eu

usage() {
  cat <<'USAGE'
usage: sudo ./install.sh [--node PATH] [--device PATH]... [--no-start] [--root DIR]
       sudo /opt/splitinfer/current/install.sh --rollback [--root DIR]
       sudo /opt/splitinfer/current/install.sh --uninstall [--purge] [--root DIR]

Install or upgrade: copies this bundle to /opt/splitinfer/<version>, points
/opt/splitinfer/current at it, writes /etc/splitinfer/edge.yaml if there is
none (an upgrade keeps yours), installs the unit and (re)starts the service.
--rollback points current back at the version installed before it.
--uninstall removes the service and /opt/splitinfer; /etc/splitinfer (config)
and /var/lib/splitinfer (journal, dedup state) stay unless --purge.

  --node PATH     Node.js >= 20 to run the agent (default: node on PATH)
  --device PATH   a device the agent may open besides the cameras in the
                  config's video.sources (repeatable; e.g. a GPU node)
  --no-start      write the files only: no systemctl (daemon-reload, enable, restart)
  --root DIR      install into DIR as if it were / (with --no-start: an image being built)
USAGE
}

fail() { echo "install.sh: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
root="" action=install node="" devices="" start=yes purge=no
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || fail "--root needs a folder"; root=${2%/}; shift 2 ;;
    --node) [ $# -ge 2 ] || fail "--node needs a path"; node=$2; shift 2 ;;
    --device) [ $# -ge 2 ] || fail "--device needs a path"; devices="$devices $2"; shift 2 ;;
    --no-start) start=no; shift ;;
    --rollback) action=rollback; shift ;;
    --uninstall) action=uninstall; shift ;;
    --purge) purge=yes; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; fail "unknown option '$1'" ;;
  esac
done
[ "$purge" = no ] || [ "$action" = uninstall ] || fail "--purge goes with --uninstall"

unit_name=splitinfer-edge.service
opt=$root/opt/splitinfer
etc=$root/etc/splitinfer
units=$root/etc/systemd/system
state=$root/var/lib/splitinfer

# systemctl acts on the running system, also with --root; --no-start writes files only (an image being built).
systemctl_live() { if [ "$start" = yes ]; then systemctl "$@"; fi; }

# A field of bundle.json (flat, one "key": "value" a line, as splitinfer bundle writes it).
manifest() { sed -n "s/^ *\"$2\": *\"\\([^\"]*\\)\".*/\\1/p" "$1/bundle.json"; }

find_node() {
  [ -n "$node" ] || node=$(command -v node || true)
  [ -n "$node" ] || fail "Node.js 20 or newer is needed and there is no 'node' on PATH — install it (Debian/Ubuntu: the nodejs package of NodeSource's 20.x or 22.x; or a nodejs.org tarball under /usr/local), or pass --node /path/to/node"
  [ -x "$node" ] || fail "--node $node is not an executable file"
  node=$(readlink -f "$node")
  major=$("$node" -p 'process.versions.node.split(".")[0]' 2>/dev/null) || fail "$node does not run — is it a Node.js binary for this machine?"
  [ "$major" -ge 20 ] || fail "$node is Node.js $("$node" --version); the agent needs 20 or newer — upgrade it or pass --node with a newer one"
  case "$node" in
    /home/*|/root/*) fail "$node is under a home folder, which the service cannot see (ProtectHome=yes) — install Node.js system-wide (/usr or /usr/local) or pass --node" ;;
  esac
}

machine_arch() {
  case $(uname -m) in
    x86_64|amd64) echo x64 ;;
    aarch64|arm64) echo arm64 ;;
    *) uname -m ;;
  esac
}

# The unit and its device drop-in, from the bundle now in $opt/current.
write_unit() {
  mkdir -p "$units/$unit_name.d"
  sed "s|@NODE@|$node|g" "$opt/current/splitinfer-edge.service" > "$units/$unit_name"
  # Cameras the config lets requests read (video.sources, outside comments) and --device paths.
  config_devices=$(sed 's/#.*//' "$etc/edge.yaml" | grep -o '/dev/[A-Za-z0-9_./-]*' || true)
  dropin="$units/$unit_name.d/devices.conf"
  {
    echo "# Written by install.sh: the devices the service may open (DevicePolicy=closed)."
    echo "[Service]"
    for dev in $config_devices $devices; do
      echo "DeviceAllow=$dev rw"
      # The device's group (video, render) lets the splitinfer user open it.
      if [ -e "$dev" ]; then group=$(stat -c %G "$dev"); [ "$group" = root ] || echo "SupplementaryGroups=$group"; fi
    done
  } > "$dropin"
  printf '%s\n' "$node" > "$opt/node-path"
}

restart() {
  systemctl_live daemon-reload
  systemctl_live enable "$unit_name"
  systemctl_live restart "$unit_name"
}

install_bundle() {
  version=$(manifest "$here" version)
  arch=$(manifest "$here" arch)
  [ -n "$version" ] && [ -d "$here/app" ] || fail "$here is not an unpacked splitinfer bundle (no bundle.json version or app/) — run install.sh from the folder the tarball unpacked to"
  [ "$arch" = "$(machine_arch)" ] || fail "this bundle is for linux-$arch, this machine is $(uname -m) — build one with splitinfer bundle --arch $(machine_arch)"
  find_node
  mkdir -p "$opt" "$etc" "$units"
  if [ "$here" != "$opt/$version" ]; then
    rm -rf "$opt/$version.new"
    cp -R "$here" "$opt/$version.new"
    rm -rf "$opt/$version"
    mv "$opt/$version.new" "$opt/$version"
  fi
  # The user first: the config is readable by its group.
  if [ -n "$root" ]; then systemd-sysusers --root="$root" "$opt/$version/splitinfer.sysusers"; else systemd-sysusers "$opt/$version/splitinfer.sysusers"; fi
  gid=$(awk -F: '$1 == "splitinfer" { print $3 }' "$root/etc/group")
  [ -n "$gid" ] || fail "systemd-sysusers did not create the group splitinfer"
  if [ ! -e "$etc/edge.yaml" ]; then
    cp "$opt/$version/edge.yaml" "$etc/edge.yaml"
    chown "0:$gid" "$etc" "$etc/edge.yaml"
    chmod 0750 "$etc"
    chmod 0640 "$etc/edge.yaml"
  fi
  previous=$(readlink "$opt/current" 2>/dev/null || true)
  if [ -n "$previous" ] && [ "$previous" != "$version" ]; then ln -sfn "$previous" "$opt/previous"; fi
  ln -sfn "$version" "$opt/current"
  write_unit
  restart
  echo "installed splitinfer edge $version (linux-$arch) in $opt/$version, Node.js $("$node" --version) at $node"
  [ "$start" = no ] || echo "service $unit_name restarted; check it with: sudo -u splitinfer $node $opt/current/app/dist/shared/cli.js doctor --config /etc/splitinfer/edge.yaml"
}

rollback() {
  previous=$(readlink "$opt/previous" 2>/dev/null || true)
  current=$(readlink "$opt/current" 2>/dev/null || true)
  [ -n "$previous" ] && [ -d "$opt/$previous" ] || fail "no earlier version to roll back to (no $opt/previous)"
  node=$(cat "$opt/node-path")
  ln -sfn "$previous" "$opt/current"
  ln -sfn "$current" "$opt/previous"
  write_unit
  restart
  echo "rolled back from $current to $previous"
}

uninstall() {
  systemctl_live disable --now "$unit_name" || true
  rm -rf "$units/$unit_name" "$units/$unit_name.d" "$opt"
  systemctl_live daemon-reload
  if [ "$purge" = yes ]; then
    rm -rf "$etc" "$state"
    echo "removed splitinfer edge, its config and its state (the system user splitinfer stays, as with Debian packages)"
  else
    echo "removed splitinfer edge; kept $etc (config) and $state (state) — --purge removes them too"
  fi
}

case "$action" in
  install) install_bundle ;;
  rollback) rollback ;;
  uninstall) uninstall ;;
esac
