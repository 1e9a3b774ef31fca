#!/usr/bin/env bash
# Cross-compiles every Lambda function (one crate per directory under functions/, binary named
# like the directory) for AWS Lambda's provided.al2023 runtime, with cargo-lambda and zig from
# ./.venv-infra (requirements-infra.txt). Result: target/lambda/<name>/bootstrap.
#
#   scripts/build-lambdas.sh                 arm64 (Graviton), what infra/template.yaml deploys
#   ARCH=x86_64 scripts/build-lambdas.sh     x86_64 instead
#   DRY_RUN=1 scripts/build-lambdas.sh       check the prerequisites, print the command, build nothing
#
# `sam build` (make deploy) runs the same `cargo lambda build` per function by itself; this script
# is the quick way to check that all functions cross-compile, or to get the binaries without SAM.
set -euo pipefail
cd "$(dirname "$0")/.."

arch="${ARCH:-arm64}"
case "$arch" in
    arm64 | aarch64) arch_flag=--arm64 target=aarch64-unknown-linux-gnu ;;
    x86_64 | x86-64 | amd64) arch_flag=--x86-64 target=x86_64-unknown-linux-gnu ;;
    *)
        echo "error: ARCH must be arm64 or x86_64, not '$arch'" >&2
        exit 2
        ;;
esac

# The Rust standard library for the target must be installed; zig only provides the C toolchain
# and linker.
if command -v rustup >/dev/null 2>&1; then
    have_target() { rustup target list --installed | grep -qx "$target"; }
else
    have_target() { [ -d "$(rustc --print sysroot)/lib/rustlib/$target" ]; }
fi
if ! have_target; then
    cat >&2 <<MSG
error: the Rust standard library for $target is not installed, so the $arch Lambda
binaries cannot be compiled. Add it once with:

    rustup target add $target

then run this again. (ARCH=x86_64 builds for x86_64 Lambda instead; infra/template.yaml deploys arm64.)
MSG
    exit 1
fi

bins=()
for manifest in functions/*/Cargo.toml; do
    [ -e "$manifest" ] || continue
    bins+=(--bin "$(basename "$(dirname "$manifest")")")
done
if [ "${#bins[@]}" -eq 0 ]; then
    echo "error: no function crates under functions/" >&2
    exit 1
fi

command=(cargo lambda build --release "$arch_flag" "${bins[@]}")
if [ -n "${DRY_RUN:-}" ]; then
    echo "dry run (nothing built): ${command[*]}"
    exit 0
fi

# shellcheck source=scripts/infra-venv.sh
source scripts/infra-venv.sh
infra_venv_ready
echo "==> ${command[*]}"
"${command[@]}"
for flag in "${bins[@]}"; do
    [ "$flag" = --bin ] && continue
    ls -l "target/lambda/$flag/bootstrap"
done
