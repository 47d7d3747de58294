#!/usr/bin/env bash
# Create .venv and install the package with its dev tools; fast when nothing changed.
#   scripts/setup.sh               the package and its dev tools
#   scripts/setup.sh --test-deps   also what some tests need beyond them (scripts/test.sh and
#                                  .ci/run pass it): the `helm` extra and Debian's Alertmanager,
#                                  PostgreSQL and Chromium. What cannot be installed is named,
#                                  one line per test group that will skip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Quiet installs: this machine's pip configuration warns about each missing link folder, and
# setuptools about every editable install.
pip_install() {
  PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install --quiet \
    --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Location" || true
}
# The stamp covers what the install builds: the project file and the compiled OTLP decoder.
stamp=.venv/.installed-$(cat pyproject.toml setup.py rca/ingest/_otlp_wire.c | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "installing into .venv (first run takes a few minutes)..." >&2
  .venv/bin/python -m pip install --quiet --upgrade pip 2>/dev/null || true
  # torch is pinned to the CPU build that lies on this machine's disk (see README).
  pip_install -e '.[dev]'
  .venv/bin/python -c "import rca, torch" # fail here, not later, if the install is incomplete
  rm -f .venv/.installed-*
  touch "$stamp"
fi
[ "${1:-}" = "--test-deps" ] || exit 0

# The Helm chart tests' extra (large, so not in dev); installed only when something is missing.
helm_check="import helm_python, kubernetes_validate, locust, yaml"
if ! .venv/bin/python -c "$helm_check" 2>/dev/null; then
  pip_install -e '.[dev,helm]'
  .venv/bin/python -c "$helm_check" 2>/dev/null \
    || echo "tests/test_helm.py will skip: install the helm extra (pip install -e '.[dev,helm]')" >&2
fi

# Real servers the tests start on loopback themselves: Debian's Alertmanager
# (tests/api/test_alertmanager_sender.py), PostgreSQL (the incident store's tests run on SQLite
# and on a throwaway cluster) and Chromium (headless screenshots of reports and /docs).
has_alertmanager() { command -v prometheus-alertmanager || command -v alertmanager; }
has_postgresql() { compgen -G "/usr/lib/postgresql/*/bin/pg_ctl"; }
has_chromium() { command -v chromium || command -v chromium-browser; }
declare -A skipped=(
  [prometheus-alertmanager]="tests/api/test_alertmanager_sender.py"
  [postgresql]="the PostgreSQL cases of tests/api (the SQLite ones run)"
  [chromium]="the headless-Chromium tests (report screenshot, /docs)"
)
missing=()
has_alertmanager >/dev/null || missing+=(prometheus-alertmanager)
has_postgresql >/dev/null || missing+=(postgresql)
has_chromium >/dev/null || missing+=(chromium)
[ ${#missing[@]} -gt 0 ] || exit 0
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
echo "installing Debian packages for the tests: ${missing[*]}" >&2
{ "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install \
    -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null 2>&1 || true
for package in "${missing[@]}"; do
  case $package in
    prometheus-alertmanager) has_alertmanager >/dev/null && continue ;;
    postgresql) has_postgresql >/dev/null && continue ;;
    chromium) has_chromium >/dev/null && continue ;;
  esac
  echo "${skipped[$package]} will skip: install the Debian package $package" >&2
done
