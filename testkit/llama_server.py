"""llama.cpp's own OpenAI-compatible server (the prebuilt xllamacpp wheel), run as a child
process on a free loopback port and serving the Gemma 3 270M file: a real remote host for tests.

`python -m testkit.llama_server MODEL PORT` is the child: the API key comes in its environment
(never on a command line other users can read), and SIGTERM ends it at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from testkit.ports import free_port

MODEL_ALIAS = "gemma3-270m"
START_SECONDS = 90.0
KEY_VARIABLE = "LLAMA_SERVER_API_KEY"


class LlamaServer:
    def __init__(self, model: Path, api_key: str | None = None, n_ctx: int = 1024) -> None:
        self.port = free_port()
        self.api_key = api_key
        command = [sys.executable, "-m", "testkit.llama_server", str(model), str(self.port)]
        env = {**os.environ, "LLAMA_SERVER_N_CTX": str(n_ctx)}
        env.pop(KEY_VARIABLE, None)
        if api_key:
            env[KEY_VARIABLE] = api_key
        # Its log goes to a file: a pipe nobody reads would fill up and stall the server.
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115  # closed by stop()
        root = Path(__file__).resolve().parent.parent
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=root
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> LlamaServer:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"the llama.cpp server exited: {self.log.read()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v1/models", headers=headers, timeout=1).is_success:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the llama.cpp server did not start within {START_SECONDS:.0f} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def serve(model: str, port: int) -> None:
    """The child: start the server, then wait for SIGTERM."""
    import xllamacpp

    from chatcore.backends.prompt_formats import TRANSCRIPT_TEMPLATE

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.model_alias = {MODEL_ALIAS}
    params.n_ctx = int(os.environ.get("LLAMA_SERVER_N_CTX", "1024"))
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = 1
    params.fit_params = False
    params.verbosity = -1
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.cors_origins = ""
    if key := os.environ.get(KEY_VARIABLE):
        params.api_keys = [key]
    # A base model: the plain transcript gets it talking (Gemma's own turn markers make it end
    # at once; see chatcore/backends/prompt_formats.py).
    params.chat_template = TRANSCRIPT_TEMPLATE
    params.use_jinja = True
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # no teardown to wait for
    server = xllamacpp.Server(params)
    print(f"listening on {server.listening_address}", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
