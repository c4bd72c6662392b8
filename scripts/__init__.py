"""Operator tools (run from the repository root as `python scripts/<name>.py --help`); shared code in `_common`."""
