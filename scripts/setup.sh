#!/usr/bin/env bash
# Installs what ngrender needs and is missing: Debian packages (Vulkan loader, lavapipe, validation layers,
# Xvfb, glslc), a virtualenv in .venv, and the package with its extras. Fast when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="libvulkan1 mesa-vulkan-drivers vulkan-validationlayers xvfb glslc strace"
missing=""
for pkg in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
python3 -c "import ensurepip, venv" 2>/dev/null || missing="$missing python3-venv"
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "ngrender setup: missing Debian packages:$missing -- run: sudo apt-get install$missing" >&2
        exit 1
    fi
    echo "ngrender setup: installing Debian packages:$missing"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
fi

if [ ! -x .venv/bin/python ]; then
    echo "ngrender setup: creating .venv"
    python3 -m venv .venv
fi

# Reinstall only when the package metadata changed. torch is pinned (CPU wheel); never an unpinned torch.
stamp=.venv/.ngrender-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "ngrender setup: installing the package with extras [train,bench,ngpc,viewer,video,mesh,farm,dev] into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e '.[train,bench,ngpc,viewer,video,mesh,farm,dev]'
    echo "$want" > "$stamp"
fi
