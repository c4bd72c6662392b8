"""cdk-nag and checkov exceptions, each with its written reason.

Why helpers: both tools accept an exception without a reason; these functions do not, so a reviewer always
reads why a rule does not apply. cdk-nag 3 runs as a CDK policy-validation plugin
(`Validations.of(app).add_plugins(AwsSolutionsChecks(app))`): any unacknowledged error fails `app.synth()`, so
`make synth` is the cdk-nag gate. checkov reads its exceptions from each resource's `Metadata.checkov.skip`.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Acknowledgment, App, CfnResource, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

NAG_PACK = "AwsSolutions"


def _require_reason(rule: str, reason: str) -> None:
    if len(reason.strip()) < 20:
        raise ValueError(f"exception for {rule} needs a written reason, got {reason!r}")


def add_nag_checks(app: App) -> None:
    """Registers the AWS Solutions pack; acknowledged rules are also written to the templates' Metadata."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))


def acknowledge(scope: IConstruct, rule: str, reason: str, findings: Iterable[str] = ()) -> None:
    """Acknowledges cdk-nag `rule` (e.g. "IAM5") on `scope` and everything below it.

    `findings` names the individual findings of multi-finding rules ("Resource::*"); cdk-nag 3 matches each
    finding separately, so a blanket acknowledgement would not cover them (and should not: each one is read).
    """
    _require_reason(rule, reason)
    rule_id = rule if rule.startswith(f"{NAG_PACK}-") else f"{NAG_PACK}-{rule}"
    ids = [f"{rule_id}[{finding}]" for finding in findings] or [rule_id]
    Validations.of(scope).acknowledge(*(Acknowledgment(id=i, reason=reason) for i in ids))


def _cfn(scope: IConstruct) -> CfnResource:
    if isinstance(scope, CfnResource):
        return scope
    child = scope.node.default_child
    if not isinstance(child, CfnResource):
        raise TypeError(f"{scope.node.path} has no CloudFormation resource to annotate")
    return child


def skip_checkov(scope: IConstruct, check_id: str, reason: str) -> None:
    """Adds a checkov skip (with its reason as the comment checkov prints) to the resource's Metadata."""
    _require_reason(check_id, reason)
    resource = _cfn(scope)
    metadata = resource.get_metadata("checkov") or {}
    skips = [s for s in metadata.get("skip", []) if s["id"] != check_id]
    skips.append({"id": check_id, "comment": reason})
    resource.add_metadata("checkov", {"skip": skips})
