"""llama-cpp-python's own OpenAI-compatible server (`python -m llama_cpp.server`), run as a child
process on a free loopback port and serving the Gemma 3 270M file: a real remote host for tests.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from testkit.ports import free_port

MODEL_ALIAS = "gemma3-270m"
START_SECONDS = 90.0


class LlamaServer:
    def __init__(self, model: Path, api_key: str | None = None, n_ctx: int = 1024) -> None:
        self.port = free_port()
        self.api_key = api_key
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            MODEL_ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(n_ctx),
            "--n_threads",
            "1",
            "--verbose",
            "False",
            # A base model: a plain USER/ASSISTANT transcript gets it talking (Gemma's own turn
            # markers make it end at once; see chatcore/backends/prompt_formats.py).
            "--chat_format",
            "vicuna",
        ]
        if api_key:
            command += ["--api_key", api_key]
        # Its log goes to a file: a pipe nobody reads would fill up and stall the server.
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  # closed by stop()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> LlamaServer:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"llama_cpp.server exited: {self.log.read()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v1/models", headers=headers, timeout=1).is_success:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not start within {START_SECONDS:.0f} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
