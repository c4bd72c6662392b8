"""CDK entry point: `npx aws-cdk@2 deploy` runs `python -m infra_cdk.app` (see cdk.json).

The deployment is described by one configuration file, `config/personal.json` unless `-c config=<path>` names
another (a bare name such as `dev` means `config/examples/dev.json`); see `infra_cdk.config_file`.

`build_app` is also what the offline synthesis (`python -m infra_cdk.synth`, `make synth`) and the assertion
tests call, so all three produce the same templates. cdk-nag's AWS Solutions pack is registered on every app:
an unacknowledged finding fails synthesis.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App

from infra_cdk import compliance, config_file
from infra_cdk.settings import with_context
from infra_cdk.stack import GoProSyncStack

CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
# CDK's own switch for skipping asset bundling (an empty list bundles no stack); see `build_app(bundle=False)`.
BUNDLING_STACKS_CONTEXT = "aws:cdk:bundling-stacks"


def cdk_json_context() -> dict[str, Any]:
    """The context (feature flags) of cdk.json, which the CDK CLI passes but a plain `App()` does not read."""
    return dict(json.loads(CDK_JSON.read_text()).get("context", {}))


def build_app(
    config: str | Path | None = None,
    *,
    outdir: str | None = None,
    context: Mapping[str, Any] | None = None,
    bundle: bool = True,
) -> tuple[App, GoProSyncStack]:
    """An app with the stack of one configuration file.

    `config` (a path, or the name of a file in config/examples/) falls back to the `config` context value, then
    to the `env` context value (`-c env=prod`: config/examples/prod.json, with `-c alert_email` required), then
    to config/personal.json. The `alert_email`, `vpc` and `schedule` context values override the file. With
    `bundle=False` (`python -m infra_cdk.synth --no-bundle`) the Lambda assets are not built, so synthesis
    needs no PyPI access even the first time; the templates are the same but the assets point at the source
    tree and must never be deployed. `make synth` and the CDK CLI always bundle.
    """
    merged: dict[str, Any] = {**cdk_json_context(), **(context or {})}
    if not bundle:
        merged[BUNDLING_STACKS_CONTEXT] = []
    app = App(outdir=outdir, context=merged) if outdir else App(context=merged)
    overrides = _overrides(app)
    chosen = config or app.node.try_get_context("config")
    legacy = app.node.try_get_context("env")
    if chosen is None and legacy:
        # `-c env=<preset>` (the GitHub deploy workflow): the preset's example file with the address from
        # `-c alert_email`, required here because the example's address is made up.
        if not overrides.get("alert_email"):
            raise config_file.ConfigFileError(f"-c env={legacy} needs -c alert_email=<your address>")
        chosen = str(legacy)
    settings = with_context(config_file.load(chosen), overrides)
    stack = GoProSyncStack(app, settings=settings)
    compliance.add_nag_checks(app)
    return app, stack


def _overrides(app: App) -> dict[str, Any]:
    return {name: app.node.try_get_context(name) for name in ("alert_email", "vpc", "schedule")}


def main() -> None:
    # Under the CDK CLI, `-c` values and cdk.json's context arrive through CDK_CONTEXT_JSON, which App() reads
    # and which takes precedence over the context `build_app` passes in.
    try:
        app, _ = build_app()
    except ValueError as exc:  # a configuration error: one line naming the field, not a traceback
        sys.exit(f"error: {exc}")
    app.synth()


if __name__ == "__main__":
    main()
