"""A small GA4GH TES server for tests: it runs each task's executor as a local process.

It implements ``POST /ga4gh/tes/v1/tasks``, ``GET /ga4gh/tes/v1/tasks/{id}`` and
``POST /ga4gh/tes/v1/tasks/{id}:cancel``. Like Funnel's local backend, it copies ``file://`` inputs
(and inline ``content``) into a private directory that stands for the container's filesystem, runs the
executor's command there with container paths (``/job/...``, in arguments and inline inputs) rewritten
to that directory, and copies declared outputs
back to their ``file://`` URLs. States go QUEUED -> RUNNING -> COMPLETE, EXECUTOR_ERROR or CANCELED.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

PREFIX = "/ga4gh/tes/v1/tasks"


class TaskRun:
    def __init__(self, task_id: str, body: dict) -> None:
        self.id = task_id
        self.body = body
        self.state = "QUEUED"
        self.root = Path(tempfile.mkdtemp(prefix=f"tes-{task_id}-"))
        self.process: subprocess.Popen | None = None
        self.exit_code: int | None = None
        self.stdout = self.stderr = ""
        self.lock = threading.Lock()
        self.cancelled = False

    def local(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def rewrite(self, argument: str) -> str:
        # Container paths (/job/...) become paths under the task's private root.
        return argument.replace("/job/", f"{self.root}/job/")

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        for item in self.body.get("inputs", []):
            target = self.local(item["path"])
            target.parent.mkdir(parents=True, exist_ok=True)
            if "content" in item:
                target.write_text(self.rewrite(item["content"]))
            else:
                shutil.copyfile(unquote(urlparse(item["url"]).path), target)
        (executor,) = self.body["executors"]
        workdir = self.local(executor.get("workdir", "/job"))
        workdir.mkdir(parents=True, exist_ok=True)
        with self.lock:
            if self.cancelled:
                return
            self.state = "RUNNING"
            self.process = subprocess.Popen(
                [self.rewrite(argument) for argument in executor["command"]],
                cwd=workdir,
                env={"PATH": "/usr/bin:/bin", **executor.get("env", {})},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        self.stdout, self.stderr = self.process.communicate()
        self.exit_code = self.process.returncode
        with self.lock:
            if self.cancelled:
                self.state = "CANCELED"
                return
            if self.exit_code != 0:
                self.state = "EXECUTOR_ERROR"
                return
            for item in self.body.get("outputs", []):
                source = self.local(item["path"])
                if source.exists():
                    target = Path(unquote(urlparse(item["url"]).path))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)
            self.state = "COMPLETE"

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            if self.process is not None and self.process.poll() is None:
                self.process.kill()
            self.state = "CANCELED"

    def view(self, view: str) -> dict:
        document = {"id": self.id, "state": self.state}
        if view in ("BASIC", "FULL"):
            document.update(
                {key: value for key, value in self.body.items() if key != "inputs" or view == "FULL"}
            )
        if view == "FULL" and self.exit_code is not None:
            document["logs"] = [
                {"logs": [{"exit_code": self.exit_code, "stdout": self.stdout, "stderr": self.stderr}]}
            ]
        return document


class TesServer:
    """Run with ``with TesServer() as server: ... server.url``; ``server.tasks`` holds every task."""

    def __init__(self) -> None:
        self.tasks: dict[str, TaskRun] = {}
        self.requests: list[tuple[str, str]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> TesServer:
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc_info) -> None:
        for task in self.tasks.values():
            task.cancel()
            shutil.rmtree(task.root, ignore_errors=True)
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def reply(self, status: int, document: dict) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                path = urlparse(self.path).path
                server.requests.append(("POST", path))
                if path == PREFIX:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    if not body.get("executors") or not body["executors"][0].get("image"):
                        self.reply(400, {"message": "executors[0].image is required"})
                        return
                    task = TaskRun(uuid.uuid4().hex, body)
                    server.tasks[task.id] = task
                    task.start()
                    self.reply(200, {"id": task.id})
                elif path.startswith(PREFIX + "/") and path.endswith(":cancel"):
                    task = server.tasks.get(path[len(PREFIX) + 1 : -len(":cancel")])
                    if task is None:
                        self.reply(404, {"message": "no such task"})
                        return
                    task.cancel()
                    self.reply(200, {})
                else:
                    self.reply(404, {"message": "not found"})

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parsed = urlparse(self.path)
                server.requests.append(("GET", parsed.path))
                task = (
                    server.tasks.get(parsed.path[len(PREFIX) + 1 :])
                    if parsed.path.startswith(PREFIX + "/")
                    else None
                )
                if task is None:
                    self.reply(404, {"message": "no such task"})
                    return
                view = dict(pair.split("=", 1) for pair in parsed.query.split("&") if "=" in pair).get(
                    "view", "MINIMAL"
                )
                self.reply(200, task.view(view))

        return Handler
