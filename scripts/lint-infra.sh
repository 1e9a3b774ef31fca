#!/usr/bin/env bash
# Lints every CloudFormation/SAM template under infra/ and tests the example service.
#   1. cfn-lint on each template: zero errors AND zero warnings (exit code != 0 otherwise).
#      Suppressions, if ever needed, go in the template's Metadata (cfn-lint: config:
#      ignore_checks) with a comment giving the reason. There are none today.
#   2. SAM templates are also expanded with the SAM transform and the generated CloudFormation is
#      linted again (cfn-lint alone does not run the transform).
#   3. checkov (framework cloudformation) on infra/ and on the expanded templates: no failed
#      check. Every skip is a `checkov: skip:` entry in the resource's Metadata with its reason.
#   4. `sam validate --lint` on each SAM template, with the pinned SAM CLI (requirements-sam.txt,
#      ./.venv-sam): the transform SAM itself runs, then its cfn-lint. No AWS account needed.
#   5. the unit tests of examples/hello-service (python3, standard library only).
# Tools come from ./.venv-infra (requirements-infra.txt) and ./.venv-sam, installed on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/infra-venv.sh
source scripts/infra-venv.sh
infra_venv_ready

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# infra/.aws-sam/ is `sam build` output (copies of the template), not a source template.
mapfile -t templates < <(find infra -name .aws-sam -prune -o -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -print | sort)
if [ "${#templates[@]}" -eq 0 ]; then
    echo "no templates under infra/" >&2
    exit 1
fi

echo "==> cfn-lint $(cfn-lint --version | awk '{print $2}'): ${templates[*]}"
cfn-lint --non-zero-exit-code informational -- "${templates[@]}"
echo "cfn-lint: ${#templates[@]} templates, 0 errors, 0 warnings"

expanded=()
for template in "${templates[@]}"; do
    if grep -qE '^Transform:.*AWS::Serverless-2016-10-31' "$template"; then
        out="$work/$(basename "${template%.*}").expanded.json"
        python3 scripts/sam_translate.py "$template" "$out"
        expanded+=("$out")
    fi
done
if [ "${#expanded[@]}" -gt 0 ]; then
    echo "==> cfn-lint on the SAM-expanded templates"
    cfn-lint --non-zero-exit-code informational -- "${expanded[@]}"
    echo "cfn-lint (expanded): ${#expanded[@]} templates, 0 errors, 0 warnings"
fi

checkov_run() {
    checkov --framework cloudformation --skip-download --compact --quiet "$@"
}
echo "==> checkov $(checkov --version) on infra/"
checkov_run -d infra --skip-path '\.aws-sam'
if [ "${#expanded[@]}" -gt 0 ]; then
    echo "==> checkov on the SAM-expanded templates"
    checkov_run -d "$work"
fi

sam_venv_ready
for template in "${templates[@]}"; do
    if grep -qE '^Transform:.*AWS::Serverless-2016-10-31' "$template"; then
        echo "==> $(sam --version): sam validate --lint -t $template"
        # no credentials, profile or region of the caller's are needed or used
        (cd "$work" && env -u AWS_PROFILE AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
            sam validate --lint --template-file "$OLDPWD/$template")
    fi
done

echo "==> examples/hello-service unit tests"
(cd examples/hello-service && PYTHONDONTWRITEBYTECODE=1 python3 -m unittest -v)

echo "lint-infra: OK"
