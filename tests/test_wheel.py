"""The project builds a wheel that carries its templates, static files and migrations, and the
installed package works from any directory: `flask --app ops_portal db upgrade`, `demo`, `run`
and `gunicorn "ops_portal:create_app()"`, with the instance folder where OPS_PORTAL_INSTANCE_PATH
says.

The wheel is installed into a new virtual environment with --no-deps; its dependencies are the
suite's own, made visible through a .pth file, so the test needs no package index. Nothing of
the repository is importable there: the commands run in an empty folder, without PYTHONPATH."""

from __future__ import annotations

import os
import re
import shutil
import site
import socket
import subprocess
import sys
import time
import venv
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from ops_portal.services.demo import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "ops_portal", "templates", "static", "migrations")
CACHES = shutil.ignore_patterns("__pycache__", "*.pyc")
READY_WITHIN = 30.0

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the project's wheel installed; returns its bin folder."""
    folder = tmp_path_factory.mktemp("wheel")
    # Built from a copy of what the project is made of, so nothing a build leaves in the
    # working tree (build/, *.egg-info) can reach the wheel or the repository.
    source = folder / "source"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **({"ignore": CACHES} if copy is shutil.copytree else {}))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(folder / "dist"), str(source)],
        check=True, capture_output=True, cwd=folder, timeout=300,
    )  # fmt: skip
    [wheel] = (folder / "dist").glob("ops_portal-*.whl")
    environment = folder / "venv"
    venv.create(environment, with_pip=False)
    [packages] = (environment / "lib").glob("python3*/site-packages")
    (packages / "suite-dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(environment / "bin" / "python"), "install",
         "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, cwd=folder, timeout=300,
    )  # fmt: skip
    return environment / "bin"


def run_in(folder: Path, env: dict, *command: str, timeout: float = 120):
    result = subprocess.run(
        command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(command: list[str], folder: Path, env: dict, port: int):
    """A server started from `folder`; the block runs once it answers (bounded wait)."""
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + READY_WITHIN
        while True:
            if process.poll() is not None:
                pytest.fail(f"{command[0]} exited: {process.stdout.read().decode()}")
            try:
                requests.get(base + "/health", timeout=5)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{command[0]} did not answer within {READY_WITHIN}s")
                time.sleep(0.1)  # still starting; bounded by READY_WITHIN
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)


def assert_serves_the_app(base: str) -> None:
    """Pages from the packaged templates, files from the packaged static folder, and the demo
    dispatcher's board from the database the packaged migrations built."""
    assert requests.get(base + "/health", timeout=5).json() == {"status": "ok"}
    stylesheet = requests.get(base + "/static/css/app.css", timeout=5)
    assert stylesheet.status_code == 200 and stylesheet.headers["Content-Type"].startswith(
        "text/css"
    )
    with requests.Session() as browser:
        login = browser.get(base + "/login", timeout=5)
        assert login.status_code == 200 and "Log in" in login.text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login.text).group(1)
        board = browser.post(
            base + "/login",
            data={"email": "admin@example.com", "password": DEMO_PASSWORD, "csrf_token": token},
            timeout=10,
        )
        assert board.status_code == 200 and board.url.endswith("/admin/"), board.text[:500]
        assert 'class="lane lane-pending"' in board.text and 'id="booking-' in board.text


def test_the_installed_wheel_migrates_loads_the_demo_and_serves_pages_from_any_directory(
    installed, tmp_path
):
    elsewhere = tmp_path / "anywhere"
    elsewhere.mkdir()
    instance = tmp_path / "instance"
    env = {
        "PATH": f"{installed}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "OPS_PORTAL_INSTANCE_PATH": str(instance),
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST": "1024",
    }
    # The dependencies' own scripts live in the suite's venv: run them as modules of this one.
    python = str(installed / "python")
    flask = [python, "-m", "flask", "--app", "ops_portal"]

    located = run_in(elsewhere, env, python, "-c",
                     "import ops_portal; print(ops_portal.__file__)")  # fmt: skip
    assert located.stdout.startswith(str(installed.parent)), "imported from outside the venv"
    run_in(elsewhere, env, *flask, "db", "upgrade")
    demo = run_in(elsewhere, env, *flask, "demo")
    assert "admin@example.com" in demo.stdout and "dispatcher" in demo.stdout
    assert (instance / "ops_portal.sqlite3").exists() and (instance / "secret_key").exists()
    assert list(elsewhere.iterdir()) == [], "nothing is written where the commands run"

    port = free_port()
    with serving([*flask, "run", "--port", str(port)], elsewhere, env, port) as base:
        assert_serves_the_app(base)
    port = free_port()
    gunicorn = [python, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                "--no-control-socket", "ops_portal:create_app()"]  # fmt: skip
    with serving(gunicorn, elsewhere, env, port) as base:
        assert_serves_the_app(base)
