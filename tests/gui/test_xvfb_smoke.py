"""Smoke test on a real X server: `nasstudio gui` starts under Xvfb at 1280x800, draws a window
that fits the screen, and ends cleanly on SIGTERM (as at logout). The offscreen tests cover the
widgets; this one covers the xcb platform plugin, its system libraries and the app's start-up.

Skipped without Xvfb, xwininfo and ImageMagick's import, unless NASSTUDIO_REQUIRE_XVFB=1 (CI)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

SCREEN = (1280, 800)
START_TIMEOUT_S = 180  # torch and Qt load slowly on a busy 2-core machine
TOOLS = ("Xvfb", "xwininfo", "import")


@pytest.fixture
def xvfb_display(tmp_path):
    """A fresh Xvfb server on a free display number (Xvfb picks it: -displayfd)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        reason = f"not installed: {', '.join(missing)} (apt-get install xvfb x11-utils imagemagick)"
        if os.environ.get("NASSTUDIO_REQUIRE_XVFB") == "1":
            pytest.fail(f"{reason}; NASSTUDIO_REQUIRE_XVFB=1")
        pytest.skip(reason)
    read_end, write_end = os.pipe()
    width, height = SCREEN
    screen = ("-screen", "0", f"{width}x{height}x24")
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), *screen, "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stderr=(tmp_path / "xvfb.log").open("w"),
    )
    os.close(write_end)
    with os.fdopen(read_end) as announced:
        number = announced.readline().strip()
    try:
        assert number, f"Xvfb did not start: {(tmp_path / 'xvfb.log').read_text()}"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=30)


def x_tool(display: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env={**os.environ, "DISPLAY": display}, capture_output=True)


def main_window_geometry(display: str, title: str) -> tuple[int, int] | None:
    """Width and height of the top-level window whose name contains ``title``, if it is up."""
    tree = x_tool(display, "xwininfo", "-root", "-tree").stdout.decode()
    for line in tree.splitlines():
        if title in line and (size := re.search(r"\)\s+(\d+)x(\d+)\+", line)):
            return int(size[1]), int(size[2])
    return None


def distinct_colours(png: bytes) -> int:
    image = QImage.fromData(png, "PNG").convertToFormat(QImage.Format.Format_RGB32)
    assert not image.isNull()
    step = 7  # a sample of the pixels is plenty to tell a drawn window from a blank screen
    return len(
        {
            image.pixel(x, y)
            for x in range(0, image.width(), step)
            for y in range(0, image.height(), step)
        }
    )


def test_the_app_starts_draws_and_ends_cleanly_under_xvfb(xvfb_display, project_path, tmp_path):
    env = {
        **os.environ,
        "DISPLAY": xvfb_display,
        "QT_QPA_PLATFORM": "xcb",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    log = tmp_path / "app.log"
    app = subprocess.Popen(
        [sys.executable, "-m", "nasstudio", "gui", "--project", str(project_path)],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    title = f"{project_path.name} — nasstudio"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while (size := main_window_geometry(xvfb_display, title)) is None:
            assert app.poll() is None, f"the app ended before its window showed:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no window after {START_TIMEOUT_S} s"
            time.sleep(0.5)
        assert size[0] <= SCREEN[0] and size[1] <= SCREEN[1], (
            f"window {size} larger than the screen"
        )
        time.sleep(2)  # the table and the plot are drawn once the project's table is read
        shot = x_tool(xvfb_display, "import", "-window", "root", "png:-")
        assert shot.returncode == 0, shot.stderr.decode()
        (tmp_path / "screen.png").write_bytes(shot.stdout)
        assert distinct_colours(shot.stdout) > 50, "the screen is (almost) blank"
        assert app.poll() is None, log.read_text()
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=60) == 0, log.read_text()
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    assert "Traceback" not in log.read_text()
    # It closed as the user would: the window's layout was saved.
    assert (tmp_path / "config" / "nasstudio" / "nasstudio.conf").exists()
