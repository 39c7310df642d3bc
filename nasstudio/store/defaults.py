"""Where projects live by default, and the demo a first-time user opens."""

from __future__ import annotations

import random
from pathlib import Path

import platformdirs

from nasstudio.space import Architecture, get_space
from nasstudio.store.project import KNOWN_TASKS, Project

PROJECT_SUFFIX = ".nasproj"
DEMO_ARCHITECTURES = 60


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir("nasstudio", appauthor=False))


def default_project_path() -> Path:
    return data_dir() / f"default{PROJECT_SUFFIX}"


def add_demo(project: Project, count: int = DEMO_ARCHITECTURES, seed: int = 0) -> None:
    """A synthetic-corpus task with architectures sampled from the CPU-sized space.

    ``count`` distinct ones: they carry analytic GFLOPs and sizes only, BLEU comes from
    training or an import.
    """
    task = project.ensure_task(KNOWN_TASKS["demo"])
    space, rng = get_space(task.space), random.Random(seed)
    archs: dict[Architecture, None] = {}  # insertion-ordered set: a repeated draw is dropped
    while len(archs) < count:
        archs[space.sample(rng)] = None
    project.add_architectures(task.name, list(archs), origin=f"demo (seed {seed})")


def open_project(path: str | Path | None = None) -> Project:
    """Open ``path`` (default: the user's default project), creating it with the demo if new."""
    path = Path(path) if path is not None else default_project_path()
    is_new = not path.exists()
    project = Project(path)
    if is_new and path == default_project_path():
        add_demo(project)
    return project
