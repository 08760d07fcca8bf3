# Sourced by compat/run.sh and tests/schema/run.sh: creates a Python virtual environment from a
# pinned requirements file, again whenever that file changes.
#
#   ensure_venv VENV_DIR REQUIREMENTS_FILE   (sets $py to the environment's python)
ensure_venv() {
  local venv=$1 requirements=$2
  py="$venv/bin/python"
  local stamp="$venv/.requirements.sha256"
  local want
  want="$(sha256sum "$requirements" | cut -d' ' -f1)"
  if [ ! -x "$py" ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    printf '%s: installing %s into %s\n' "$(basename "$(dirname "$requirements")")" "$requirements" "$venv"
    python3 -m venv "$venv"
    "$py" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    printf '%s\n' "$want" >"$stamp"
  fi
}
