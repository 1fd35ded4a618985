# Shared by bin/demo and bin/test: make sure .venv exists and holds the project's packages.
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AMENDS_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
EXTRAS="${1:-}"

if [ ! -x "$PY" ]; then
  echo "==> creating virtualenv in $VENV"
  python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
fi
stamp="$VENV/.amends-installed${EXTRAS:+-$EXTRAS}"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  echo "==> installing packages (pyproject.toml${EXTRAS:+ [$EXTRAS]})"
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$PY" -m pip install --quiet --disable-pip-version-check -e "$ROOT${EXTRAS:+[$EXTRAS]}"
  touch "$stamp"
fi
