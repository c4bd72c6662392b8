"""The whole pipeline on one machine: a moto server for AWS, the GoPro simulator, Lambda-like consumers.

A dev tool (never in the Lambda package). `python -m devtools.local_runtime` and `make demo` use it; the
integration tests drive `LocalPipeline` directly.
"""

from devtools.local_runtime.pipeline import LocalPipeline, RunResult

__all__ = ["LocalPipeline", "RunResult"]
