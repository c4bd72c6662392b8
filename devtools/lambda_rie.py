"""Runs a packaged Lambda function here as Lambda runs it: the Runtime Interface Emulator + awslambdaric.

Why not just import the handler: an import from the repository sees every module of the checkout and every
package of the dev virtualenv, so a module missing from the code asset, a handler string that names nothing or a
dependency absent from the layer all pass. Here the function runs from its own code asset (the working
directory, as `/var/task`), with only the layer (`python/`, as `/opt/python`) and the runtime client on its path,
under the Python version the template declares, through Lambda's real INIT/INVOKE cycle and error shapes.

- `setup()` builds, once, a kit in `.cache/lambda-rie/<hash>/`: the emulator binary (unzipped from the
  aws-sam-cli wheel, which ships it; SAM itself is never installed), `awslambdaric` (`runtime/`, as
  `/var/runtime`) and `requirements.txt` installed for *this* machine's architecture (`layer/python/`: the
  deployed layer holds arm64 wheels, which cannot load on an x86_64 test machine). Pins: requirements-rie.txt.
- `LambdaEmulator(spec, kit, ...)` starts one function (`with` block), `invoke(event)` POSTs an event to it as
  the Invoke API would, and the `Invocation` it answers tells Lambda's error shape apart from a result.

The emulator always binds its internal runtime API to 127.0.0.1:9001, so one function runs at a time on a machine:
a lock file in the system temp directory serialises every emulator, across processes and checkouts.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests

from devtools.net import free_port, wait_for_port

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO_ROOT / "requirements.txt"
RIE_REQUIREMENTS = REPO_ROOT / "requirements-rie.txt"
CACHE_ROOT = REPO_ROOT / ".cache" / "lambda-rie"
SAM_PACKAGE = "aws-sam-cli"
LOCK_FILE = Path(tempfile.gettempdir()) / "aws-lambda-rie-9001.lock"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
# Bump when the kit's layout changes, so old caches are not reused.
KIT_FORMAT = "1"

# machine -> (the emulator binary's suffix, pip's platform tag)
ARCHITECTURES = {"x86_64": ("x86_64", "manylinux2014_x86_64"), "aarch64": ("arm64", "manylinux2014_aarch64")}

# Variables Lambda sets itself and refuses in a function's configuration: a template that sets one would fail to
# deploy, so it fails here too (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html).
RESERVED_VARIABLES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


class FunctionError(AssertionError):
    """The function answered Lambda's error shape (`errorType`, `errorMessage`) instead of a result."""

    def __init__(self, function: str, error_type: str, message: str, logs: str) -> None:
        super().__init__(f"{function} failed with {error_type}: {message}\n--- last log lines ---\n{logs}")
        self.function = function
        self.error_type = error_type
        self.error_message = message


@dataclass(frozen=True)
class RuntimeKit:
    """What `setup()` built: the emulator, the runtime client, a layer for this machine, and the interpreter."""

    rie: Path
    runtime_dir: Path
    layer_dir: Path  # holds `python/`, as the layer asset does
    python: Path
    python_version: str


@dataclass(frozen=True)
class FunctionSpec:
    """One function as its template declares it (environment already mapped to local values)."""

    name: str
    handler: str
    runtime: str  # "python3.12"
    memory_mb: int
    timeout_seconds: int
    code_dir: Path
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def python_version(self) -> str:
        if not self.runtime.startswith("python"):
            raise ValueError(f"{self.name}: runtime {self.runtime!r} is not a Python runtime")
        return self.runtime.removeprefix("python")


@dataclass(frozen=True)
class Invocation:
    status: int
    payload: Any

    @property
    def error(self) -> tuple[str, str] | None:
        """(errorType, errorMessage) when the answer is Lambda's error shape, else None."""
        if isinstance(self.payload, dict) and "errorType" in self.payload and "errorMessage" in self.payload:
            return str(self.payload["errorType"]), str(self.payload["errorMessage"])
        return None


# --- the kit --------------------------------------------------------------------------------------------------


def _architecture() -> tuple[str, str]:
    machine = platform.machine()
    if machine not in ARCHITECTURES:
        raise RuntimeError(f"no Runtime Interface Emulator for this machine ({machine})")
    return ARCHITECTURES[machine]


def _pins() -> tuple[list[str], str]:
    """(the runtime client's requirement lines, the aws-sam-cli pin) from requirements-rie.txt."""
    lines = [line.split("#", 1)[0].strip() for line in RIE_REQUIREMENTS.read_text().splitlines()]
    lines = [line for line in lines if line]
    sam = [line for line in lines if line.startswith(f"{SAM_PACKAGE}==")]
    if len(sam) != 1:
        raise RuntimeError(f"{RIE_REQUIREMENTS.name} must pin {SAM_PACKAGE} exactly once")
    return [line for line in lines if line not in sam], sam[0]


def kit_hash(python_version: str) -> str:
    digest = hashlib.sha256()
    for part in (
        REQUIREMENTS.read_bytes(),
        RIE_REQUIREMENTS.read_bytes(),
        python_version.encode(),
        KIT_FORMAT.encode(),
    ):
        digest.update(part)
        digest.update(b"\0")
    digest.update(platform.machine().encode())
    return digest.hexdigest()[:32]


def find_python(version: str) -> Path:
    """This machine's `python<version>`: $LAMBDA_RIE_PYTHON, PATH, then pyenv's versions (whose shims only answer
    for the globally selected versions)."""
    candidates = [os.environ.get("LAMBDA_RIE_PYTHON"), shutil.which(f"python{version}")]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")))
    candidates += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    for candidate in filter(None, candidates):
        try:
            argv = [candidate, "-c", probe]
            answer = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
        except OSError:
            continue
        if answer.returncode == 0 and answer.stdout.strip() == version:
            return Path(candidate)
    raise RuntimeError(f"python{version} (the runtime the template declares) is not installed on this machine")


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    subprocess.run(command, check=True)  # noqa: S603 - fixed argv, no shell


def _install_for_lambda(target: Path, requirements: list[str], python_version: str, pip_platform: str) -> None:
    """Wheels only, for the target interpreter and this machine's architecture, laid out flat (`--target`)."""
    _pip(
        "install",
        "--no-compile",
        "--only-binary=:all:",
        "--platform",
        pip_platform,
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--target",
        str(target),
        *requirements,
    )
    shutil.rmtree(target / "bin", ignore_errors=True)


def _fetch_rie(target: Path, sam_pin: str, suffix: str) -> Path:
    member = f"samcli/local/rapid/aws-lambda-rie-{suffix}"
    with tempfile.TemporaryDirectory() as download:
        _pip("download", "--no-deps", "--only-binary=:all:", "--dest", download, sam_pin)
        (wheel,) = Path(download).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            binary = target / Path(member).name
            binary.write_bytes(archive.read(member))
    binary.chmod(0o755)
    return binary


def setup(python_version: str = "3.12", cache_root: Path = CACHE_ROOT) -> RuntimeKit:
    """The kit for `python_version`, built on first use (4-12 s here, downloads included) and reused afterwards."""
    suffix, pip_platform = _architecture()
    python = find_python(python_version)
    target = cache_root / kit_hash(python_version)
    if not (target / ".complete").exists():
        runtime_requirements, sam_pin = _pins()
        cache_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=cache_root))
        try:
            _fetch_rie(work, sam_pin, suffix)
            _install_for_lambda(work / "runtime", runtime_requirements, python_version, pip_platform)
            _install_for_lambda(
                work / "layer" / "python", ["--requirement", str(REQUIREMENTS)], python_version, pip_platform
            )
            (work / ".complete").write_text(f"{sam_pin} {' '.join(runtime_requirements)} {pip_platform}\n")
            try:
                work.rename(target)
            except OSError:  # another session finished first: keep its copy
                shutil.rmtree(work, ignore_errors=True)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return RuntimeKit(
        rie=target / f"aws-lambda-rie-{suffix}",
        runtime_dir=target / "runtime",
        layer_dir=target / "layer",
        python=python,
        python_version=python_version,
    )


# --- one function ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _emulator_lock(timeout: float) -> Iterator[None]:
    """Held while an emulator runs: they all bind 127.0.0.1:9001 inside."""
    with LOCK_FILE.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another Lambda emulator held {LOCK_FILE} for {timeout:.0f}s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lambda_environment(
    spec: FunctionSpec, kit: RuntimeKit, *, region: str, extra: Mapping[str, str]
) -> dict[str, str]:
    """What the function's process sees: Lambda's own variables, then the template's, then `extra` (endpoints and
    credentials, which Lambda takes from the role). Nothing is inherited from the calling process."""
    reserved = sorted(RESERVED_VARIABLES & set(spec.environment))
    if reserved:
        raise ValueError(f"{spec.name}: the template sets variables Lambda reserves: {', '.join(reserved)}")
    own = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "LAMBDA_RUNTIME_DIR": str(kit.runtime_dir),
        # Lambda's order: the layer (/opt/python) before the runtime (/var/runtime); the code asset is the cwd.
        "PYTHONPATH": f"{kit.layer_dir / 'python'}{os.pathsep}{kit.runtime_dir}",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_seconds),  # the emulator enforces it
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        # Lambda points the X-Ray SDK at its own daemon address; here it must stay on loopback.
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_HANDLER": spec.handler,
    }
    return {**own, **spec.environment, **extra}


class LambdaEmulator:
    """One function under the emulator, warm across invocations (as a Lambda container is), until `stop()`."""

    def __init__(
        self,
        spec: FunctionSpec,
        kit: RuntimeKit,
        *,
        log_path: Path,
        region: str,
        extra_environment: Mapping[str, str] | None = None,
        lock_timeout: float = 300.0,
    ) -> None:
        if spec.python_version != kit.python_version:
            raise ValueError(f"{spec.name} declares {spec.runtime}, the kit runs python{kit.python_version}")
        self.spec = spec
        self.log_path = log_path
        self._kit = kit
        self._environment = lambda_environment(spec, kit, region=region, extra=extra_environment or {})
        self._lock_timeout = lock_timeout
        self._stack = contextlib.ExitStack()
        self._process: subprocess.Popen[bytes] | None = None
        self._url = ""

    def start(self) -> LambdaEmulator:
        self._stack.enter_context(_emulator_lock(self._lock_timeout))
        port = free_port()
        log: IO[bytes] = self._stack.enter_context(self.log_path.open("ab"))
        command = [
            str(self._kit.rie),
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{port}",
            # -S: no site-packages of the interpreter; only the layer and the runtime client are importable.
            str(self._kit.python),
            "-S",
            "-m",
            "awslambdaric",
            self.spec.handler,
        ]
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            command, cwd=self.spec.code_dir, env=self._environment, stdout=log, stderr=subprocess.STDOUT
        )
        self._stack.callback(self._terminate)
        self._wait_until_listening(port, timeout=30.0)
        self._url = f"http://127.0.0.1:{port}{INVOKE_PATH}"
        return self

    def _wait_until_listening(self, port: int, timeout: float) -> None:
        """Fails at once, with the emulator's own words, if it exits instead (for example 9001 already in use)."""
        deadline = time.monotonic() + timeout
        while self._process is not None and self._process.poll() is None:
            try:
                wait_for_port(port, timeout=0.5)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
        raise RuntimeError(f"the Lambda emulator exited before listening:\n{self.log_tail()}")

    def invoke(self, event: Any) -> Invocation:
        """A synchronous invocation (RequestResponse), with the function's timeout plus a margin."""
        answer = requests.post(self._url, json=event, timeout=self.spec.timeout_seconds + 30)
        try:
            payload = answer.json() if answer.content else None
        except ValueError:
            payload = answer.text
        return Invocation(answer.status_code, payload)

    def invoke_ok(self, event: Any) -> Any:
        """The result, or FunctionError (with the function's last log lines) for Lambda's error shape."""
        invocation = self.invoke(event)
        if invocation.error is not None:
            raise FunctionError(self.spec.name, *invocation.error, logs=self.log_tail())
        if invocation.status != 200:
            raise FunctionError(
                self.spec.name, f"HTTP {invocation.status}", str(invocation.payload), self.log_tail()
            )
        return invocation.payload

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _terminate(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> LambdaEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Builds the Lambda emulation kit of tests/packaging into .cache/")
    parser.add_argument("command", choices=["setup"])
    parser.add_argument("--python-version", default="3.12")
    args = parser.parse_args(argv)
    started = time.monotonic()
    kit = setup(args.python_version)
    print(f"lambda-rie kit: {kit.rie.parent} (python {kit.python}) in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
