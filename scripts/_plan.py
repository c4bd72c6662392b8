"""What tonight's run would queue, and why the rest is skipped (`gopro-s3-sync plan`).

A thin adapter over the pipeline's own night planner (`App(settings).night_planner().plan()`,
pipeline/services/night_plan.py), so the answer is the lister's, not a second guess of it. Nothing is sent and
nothing is written.

Example: gopro-s3-sync plan --env prod --json
"""

from __future__ import annotations

from typing import Any

from scripts._common import EXIT_OK, create_provider, load_context, print_json, setup_logging

NAME = "plan"


def execute(args: Any) -> int:
    from pipeline.app import App  # the planner lives with the lister; imported when asked for

    setup_logging(args)
    ctx = load_context(args, provider=args.provider)
    create_provider(ctx)  # the provider's settings checked first: half the GoPro credentials is one clear line
    planner = App(ctx.settings).night_planner()
    plan = planner.plan()
    if args.json:
        print_json(plan.as_json())
    else:
        print("\n".join(plan.lines()))
    return EXIT_OK
