"""AWS error codes the pipeline tells apart, named once.

Why: botocore raises one `ClientError` for every refusal; what it means lives in `response["Error"]["Code"]`.
Reading that dictionary by hand in each module is how codes got spelled three ways.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"
RESOURCE_NOT_FOUND = "ResourceNotFoundException"
RESOURCE_IN_USE = "ResourceInUseException"
NO_SUCH_UPLOAD = "NoSuchUpload"
#: HeadObject answers a bare status code; GetObject names it.
OBJECT_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
#: S3 answers worth a retry after botocore's own retries gave up.
TRANSIENT_S3 = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "Throttling"})


def error_code(exc: BaseException) -> str:
    """The AWS error code of a `ClientError` ("" for anything else)."""
    if not isinstance(exc, ClientError):
        return ""
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: BaseException) -> str:
    if not isinstance(exc, ClientError):
        return str(exc)
    return str(exc.response.get("Error", {}).get("Message", ""))


def is_condition_failure(exc: BaseException) -> bool:
    return error_code(exc) == CONDITIONAL_CHECK_FAILED
