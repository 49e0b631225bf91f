#!/usr/bin/env bash
# Installs the Debian packages listed in deploy/system-packages.txt that are missing; does
# nothing (and needs no network) when all of them are installed. Run as root, or with sudo.
set -euo pipefail
cd "$(dirname "$0")"
missing=()
# A line is a package, optionally followed by the command it provides: then a machine that has
# the command from elsewhere (Node.js from another vendor's package, say) needs nothing.
while read -r package command _; do
    [[ -z "$package" || "$package" == \#* ]] && continue
    [[ -n "${command:-}" && "$command" != \#* ]] && command -v "$command" >/dev/null && continue
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done < system-packages.txt
if ((${#missing[@]} == 0)); then
    echo "system packages: all installed"
    exit 0
fi
echo "system packages: installing ${missing[*]}"
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
echo "system packages: installed ${missing[*]}"
