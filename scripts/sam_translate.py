#!/usr/bin/env python3
"""Expand a SAM template into plain CloudFormation, as CloudFormation's
AWS::Serverless-2016-10-31 transform would, and write it as JSON.

cfn-lint validates SAM templates against SAM schemas without running the transform, so it
cannot see problems that only exist in the generated resources (for example a circular
dependency between a function and the HTTP API that SAM wires to it). scripts/lint-infra.sh
therefore lints the expanded template as well.

usage: sam_translate.py TEMPLATE OUTPUT_JSON
"""

import json
import os
import sys

from cfnlint.decode import decode
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform


class NoManagedPolicies:
    """The templates name no AWS managed policies in SAM `Policies`, so nothing to look up
    (the real loader would call IAM)."""

    def load(self):
        return {}


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = sys.argv[1], sys.argv[2]
    # The transform resolves pseudo parameters such as AWS::Region; any region will do.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template, matches = decode(source)
    if matches:
        for match in matches:
            print(f"{source}: {match}", file=sys.stderr)
        return 1
    # `sam build` replaces CodeUri with the built artifact; stand in a placeholder location.
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://placeholder-bucket/placeholder.zip"
    try:
        expanded = transform(json.loads(json.dumps(template)), {}, NoManagedPolicies())
    except InvalidDocumentException as error:
        for cause in error.causes:
            print(f"{source}: SAM transform: {cause.message}", file=sys.stderr)
        return 1
    with open(target, "w", encoding="utf-8") as out:
        json.dump(expanded, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
