# Sourced by tools/check and tools/example: installs Hatch (with uv, its installer) and makes every
# installed Python >= 3.11 visible to it.
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "hatch>=1.16,<2" "uv>=0.5"

# Hatch finds interpreters on PATH. Under pyenv, expose every installed 3.11+ so the test matrix can
# run on the oldest and the newest one.
if command -v pyenv >/dev/null 2>&1; then
  PYENV_VERSION=$(pyenv versions --bare | grep -E '^3\.(1[1-9])\.[0-9]+$' | sort -V | paste -sd: -)
  export PYENV_VERSION
fi
