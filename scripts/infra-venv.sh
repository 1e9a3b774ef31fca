# Sourced by scripts/lint-infra.sh and scripts/build-lambdas.sh (not executable on its own).
# Makes sure ./.venv-infra exists with exactly requirements-infra.txt installed, then puts its
# bin/ first on PATH (cfn-lint, checkov, cargo-lambda, and zig via `python3 -m ziglang`).
# Override the location with INFRA_VENV=/path.

infra_venv_ready() {
    local root venv stamp wanted
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="${INFRA_VENV:-$root/.venv-infra}"
    stamp="$venv/.requirements-infra.sha256"
    wanted="$(sha256sum "$root/requirements-infra.txt" | cut -d' ' -f1)"
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
        echo "==> installing requirements-infra.txt into $venv" >&2
        python3 -m venv "$venv" || return 1
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip || return 1
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r "$root/requirements-infra.txt" || return 1
        echo "$wanted" >"$stamp"
    fi
    export PATH="$venv/bin:$PATH"
    export INFRA_VENV="$venv"
}
