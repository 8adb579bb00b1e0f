#!/usr/bin/env bash
# System packages omnifs needs: FUSE 3 (to build pyfuse3 and to mount), and
# the tools the mount tests and benchmarks drive. Idempotent: installs only
# what is missing.
set -euo pipefail
pkgs=(fuse3 libfuse3-dev pkg-config gcc python3-venv attr sqlite3 rsync git rclone s3fs nodejs npm chromium
      prometheus  # prometheus + promtool: the metrics tests start their own on a free port
      postgresql)  # PostgreSQL 15: the catalog tests start a throwaway cluster on a free port
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from elsewhere than Debian's packages
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -ra missing <<<"${missing[*]}"
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null
    $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
}
# the metrics tests run their own Prometheus: the packaged service stays off
if printf '%s\n' "${missing[@]}" | grep -qx -e prometheus -e postgresql; then
    for svc in prometheus prometheus-node-exporter postgresql; do
        $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
        $SUDO update-rc.d "$svc" disable >/dev/null 2>&1 || true
    done
fi
