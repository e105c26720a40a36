# Shared set-up for scripts/demo and scripts/test: find Python 3.11+, make .venv, install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  # Install Debian packages that are missing (quietly; once per call).
  if [ -z "${_APT_UPDATED:-}" ]; then as_root apt-get update -qq; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "Recoup needs Python 3.11 or newer (apt-get install python3)." >&2
  return 1
}

setup_venv() {
  local python; python=$(find_python)
  if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
    echo "Installing python3-venv…"; apt_install python3-venv
  fi
  if [ ! -x .venv/bin/python ]; then "$python" -m venv .venv; fi
  if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
    echo "Installing Recoup and its dependencies into .venv…"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[dev]"
    touch .venv/.installed
  fi
  # Letters are drawn as PDF in a font with Chinese glyphs: Debian's WenQuanYi Micro Hei.
  if [ -z "${RECOUP_LETTER_FONT:-}" ] && [ ! -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
    echo "Installing a font with Chinese glyphs for letters (fonts-wqy-microhei)…"
    apt_install fonts-wqy-microhei
  fi
}
