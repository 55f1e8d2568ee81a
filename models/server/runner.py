"""Running the server: bind, serve until SIGTERM / SIGINT, drain, stop; worker processes sharing a port.

``serve_forever`` runs one server process on uvloop where installed. Several workers share one port through
SO_REUSEPORT: :func:`start_workers` spawns the extra processes (each runs the same command and loads its own
models), :func:`stop_workers` ends them within the grace period. :class:`ServerProcess` is ``purgatory serve``
in a child process, started and stopped the way benchmarks and tests need it (127.0.0.1 only).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from models.server.app import ServerConfig, create_app, drain
from models.server.loading import ServedModel


async def serve(app: web.Application, host: str, port: int, grace_s: float, reuse_port: bool = False) -> None:
    """Run ``app`` until SIGTERM / SIGINT, then drain and stop. Prints ``serving on http://host:port``."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=min(grace_s, 1.0))
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=4096)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    print(f"serving on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    clean = await drain(app, grace_s)
    print(
        f"shutting down ({'all in-flight requests finished' if clean else 'grace period exceeded'})",
        flush=True,
    )
    await runner.cleanup()


def run_loop(coro) -> None:
    """Run ``coro`` on uvloop (libuv: less event-loop cost per request) where installed, else asyncio."""
    try:
        import uvloop  # noqa: PLC0415 - optional: not on Windows
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def serve_forever(models: dict[str, ServedModel], config: ServerConfig, host: str, port: int,
                  reuse_port: bool = False) -> None:
    """Serve ``models`` on ``host:port`` until SIGTERM / SIGINT, then drain within ``config.grace_s``."""
    run_loop(serve(create_app(models, config), host, port, config.grace_s, reuse_port=reuse_port))


def start_workers(target: Callable[[list[str]], None], argv: list[str], n: int) -> list[mp.Process]:
    """Spawn ``n`` processes running ``target(argv)`` (each a server worker on the shared port)."""
    ctx = mp.get_context("spawn")
    children = [ctx.Process(target=target, args=(argv,), daemon=False) for _ in range(n)]
    for c in children:
        c.start()
    return children


def stop_workers(children: list[mp.Process], grace_s: float) -> None:
    """SIGTERM every worker (each drains) and wait for them, at most ``grace_s + 5`` seconds each."""
    for c in children:
        c.terminate()
    for c in children:
        c.join(grace_s + 5)


class ServerProcess:
    """``purgatory serve ARGS --host 127.0.0.1 --port PORT`` in a child process; a context manager.

    Starting waits until the server prints ``serving on http://127.0.0.1:<port>`` (``port = 0`` picks a free
    one, read back into :attr:`port`); stopping sends SIGTERM (a graceful drain) and waits. Raises
    RuntimeError when the server exits before serving (its stderr is in ``log`` when given).
    """

    def __init__(self, args: list[str], port: int = 0, log: Path | None = None, cwd: Path | None = None,
                 env: dict | None = None):
        cmd = [sys.executable, "-m", "sim.cli", "serve", *args, "--host", "127.0.0.1", "--port", str(port)]
        self.log = open(log, "w") if log is not None else None  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=cwd,
                                     env=env)
        line = ""
        while "serving on" not in line:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait(timeout=30)
                where = f"; see {log}" if log is not None else ""
                raise RuntimeError(f"purgatory serve exited early with {self.proc.returncode}{where}")
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM (if still running) and wait; returns the exit code. Safe to call twice."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout_s)
        if self.log is not None and not self.log.closed:
            self.log.close()
        return code

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
