#!/usr/bin/env bash
# Proves that no Lambda function links the local sandbox or test code: for every functions/*
# crate and each Lambda target (arm64, x86_64), neither the `shipgate-sandbox` crate (nor the
# CLI or the test harness) is in its dependency graph, and no workspace crate in it is built with
# a test or sandbox feature (`test-util`, `local`).
#
# Two resolutions are checked, because cargo unifies features across the packages it builds:
#   - `cargo build --release -p <function>`: the function alone;
#   - `cargo build --workspace --release` (and SAM's `cargo lambda build --release --bin <name>`
#     in the workspace root, which selects every member): features requested by any member — the
#     CLI, the test harness — are unified into the crates the functions link.
# Edges are `normal,build`: dev-dependencies (where `test-util` belongs) are not built for a
# release binary and, with resolver 2, do not unify into it. (`cargo tree -e features` alone
# includes dev-dependencies, so it would show the functions' own test setup.)
#
# The crypto crates the SDK's request signing (aws-sigv4) links — hmac and sha2 — must be in
# each binary at one version only, so shipgate's own HMACs (webhook signatures, approval tokens)
# share their code (`ONE_COPY`).
#
# Other feature differences between the two resolutions (third-party crates getting more
# features in a workspace-wide build) are listed as notes, not failures.
#
#   scripts/check-release-deps.sh            check; exit 1 with the offending paths if any
#   TARGETS="x86_64-unknown-linux-gnu" ...   other targets
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
TARGETS=${TARGETS:-"aarch64-unknown-linux-gnu x86_64-unknown-linux-gnu"}
# crates a Lambda must never link, and features of workspace crates it must never be built with
export FORBIDDEN_CRATES="shipgate-sandbox shipgate-tests shipgate"
export FORBIDDEN_FEATURES="test-util local"
# crates each function must link at a single version
export ONE_COPY="hmac sha2"

functions=()
for manifest in functions/*/Cargo.toml; do
    functions+=("$(sed -n 's/^name = "\(.*\)"/\1/p' "$manifest" | head -1)")
done
if [ "${#functions[@]}" -eq 0 ]; then
    echo "error: no function crates under functions/" >&2
    exit 1
fi

tree() {
    "$CARGO" tree --locked -e normal,build -f '{p} [{f}]' --prefix depth "$@"
}

trees=$(mktemp -d)
trap 'rm -rf "$trees"' EXIT
for target in $TARGETS; do
    tree --workspace --target "$target" >"$trees/workspace.$target"
    for f in "${functions[@]}"; do
        tree -p "$f" --target "$target" >"$trees/alone.$f.$target"
    done
done

python3 - "$trees" "$TARGETS" "${functions[@]}" <<'PY'
import os
import re
import sys

trees, targets, functions = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
forbidden_crates = set(os.environ["FORBIDDEN_CRATES"].split())
forbidden_features = set(os.environ["FORBIDDEN_FEATURES"].split())
one_copy = set(os.environ["ONE_COPY"].split())
LINE = re.compile(r"^(\d+)(\S+) (v\S+)(?: \(([^)]*)\))? \[([^\]]*)\]( \(\*\))?$")


def parse(path):
    """Nodes (name, version, source, features) and their children; `(*)` repeats are joined
    to the first occurrence, where cargo tree printed their children."""
    children, roots, stack = {}, [], []
    for raw in open(path):
        raw = raw.rstrip("\n")
        if not raw:
            continue
        m = LINE.match(raw)
        if not m:
            sys.exit(f"check-release-deps: cannot read cargo tree line {raw!r}")
        depth = int(m.group(1))
        feats = frozenset(f for f in m.group(5).split(",") if f)
        node = (m.group(2), m.group(3), m.group(4) or "", feats)
        del stack[depth:]
        if depth == 0:
            roots.append(node)
        else:
            children.setdefault(stack[-1], set()).add(node)
        children.setdefault(node, set())
        stack.append(node)
    return children, roots


def closure(children, root):
    """Every node reachable from `root`, with one path to it (for the report)."""
    paths, todo = {root: [root]}, [root]
    while todo:
        node = todo.pop()
        for child in children.get(node, ()):
            if child not in paths:
                paths[child] = paths[node] + [child]
                todo.append(child)
    return paths


def local(node):
    return node[2].startswith("/")  # a path dependency: a workspace crate


def show(path):
    return " -> ".join(
        f"{n[0]}" + (f" [{','.join(sorted(n[3]))}]" if n[3] else "") for n in path
    )


failures, notes = [], []
for target in targets:
    ws_children, ws_roots = parse(f"{trees}/workspace.{target}")
    for f in functions:
        al_children, al_roots = parse(f"{trees}/alone.{f}.{target}")
        resolutions = {"-p " + f: (al_children, al_roots[0])}
        root = next((r for r in ws_roots if r[0] == f), None)
        if root is None:
            failures.append(f"{target}: {f} is missing from the workspace tree")
            continue
        resolutions["--workspace"] = (ws_children, root)
        seen = {}
        for how, (children, start) in resolutions.items():
            paths = closure(children, start)
            seen[how] = {(n[0], n[1], n[2]): n[3] for n in paths}
            for node, path in sorted(paths.items()):
                where = f"{target}, cargo build --release {how}"
                if node[0] in forbidden_crates:
                    failures.append(f"{where}: {f} links {node[0]}: {show(path)}")
                bad = node[3] & forbidden_features if local(node) else set()
                if bad:
                    failures.append(
                        f"{where}: {node[0]} is built with {', '.join(sorted(bad))}: {show(path)}"
                    )
        for how, pkgs in seen.items():
            for name in sorted(one_copy):
                versions = sorted({v for (n, v, _) in pkgs if n == name})
                if len(versions) > 1:
                    failures.append(
                        f"{target}, cargo build --release {how}: {f} links {name} "
                        f"{' and '.join(versions)} (align with aws-sigv4's)"
                    )
        alone, ws = seen["-p " + f], seen["--workspace"]
        for pkg in sorted(ws):
            extra = ws[pkg] - alone.get(pkg, frozenset())
            if extra and pkg not in alone:
                notes.append(f"{target}: {f}: {pkg[0]} only in a workspace build")
            elif extra:
                notes.append(
                    f"{target}: {f}: {pkg[0]} gains {','.join(sorted(extra))} in a workspace build"
                )

checked = f"{len(functions)} functions x {len(targets)} targets, alone and workspace-wide"
if notes:
    # the same third-party unification shows for every function: print each once
    uniq = sorted({n.split(": ", 2)[2] for n in notes})
    print("note: feature unification in `cargo build --workspace` (not sandbox or test code):")
    for n in uniq:
        print(f"  {n}")
if failures:
    print("error: sandbox or test code, or a duplicated crate, in a Lambda binary:", file=sys.stderr)
    for line in failures:
        print(f"  {line}", file=sys.stderr)
    sys.exit(1)
print(
    f"release dependencies: no sandbox crate, no test feature, one {'/'.join(sorted(one_copy))} ({checked})"
)
PY
