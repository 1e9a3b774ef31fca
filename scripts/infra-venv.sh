# Sourced by scripts/lint-infra.sh and scripts/build-lambdas.sh (not executable on its own).
# Makes sure ./.venv-infra exists with exactly requirements-infra.txt installed, then puts its
# bin/ first on PATH (cfn-lint, checkov, cargo-lambda, and zig via `python3 -m ziglang`).
# Override the location with INFRA_VENV=/path.
# sam_venv_ready does the same for ./.venv-sam with requirements-sam.txt (the AWS SAM CLI, which
# cannot share a virtualenv with checkov; see that file). Override with SAM_VENV=/path.

# _venv_ready VENV REQUIREMENTS: VENV has exactly REQUIREMENTS installed (a stamp of its hash).
_venv_ready() {
    local venv="$1" requirements="$2" stamp wanted
    stamp="$venv/.$(basename "$requirements" .txt).sha256"
    wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
        echo "==> installing $(basename "$requirements") into $venv" >&2
        python3 -m venv "$venv" || return 1
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip || return 1
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            -r "$requirements" || return 1
        echo "$wanted" >"$stamp"
    fi
}

infra_venv_ready() {
    local root venv
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="${INFRA_VENV:-$root/.venv-infra}"
    _venv_ready "$venv" "$root/requirements-infra.txt" || return 1
    export PATH="$venv/bin:$PATH"
    export INFRA_VENV="$venv"
}

# Puts `sam` (requirements-sam.txt) first on PATH; call after infra_venv_ready so that
# cargo-lambda and zig stay on PATH too.
sam_venv_ready() {
    local root venv
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="${SAM_VENV:-$root/.venv-sam}"
    _venv_ready "$venv" "$root/requirements-sam.txt" || return 1
    export PATH="$venv/bin:$PATH"
    export SAM_VENV="$venv"
    export SAM_CLI_TELEMETRY="${SAM_CLI_TELEMETRY:-0}"
}
