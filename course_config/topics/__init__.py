"""The course's topics, one file each: `<slug>.py` declares `TOPIC = Topic(slug="<slug>", number=..., ...)`.

A topic is in the course (in release/, the tests, CI and `dlcore demo`) when its file is here, so add the file
once the topic's calibration, mutant and nbgrader runs are verified. No list of topic names is kept anywhere:
`discover` imports every module of this package, and `course_config.TOPICS` orders what it finds by
`Topic.number`.
"""
from __future__ import annotations

import importlib
import pkgutil

from course_config.schema import ConfigError, Topic


def discover() -> tuple[Topic, ...]:
    """The TOPIC of every module in this package, in course order (Topic.number)."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        declared = getattr(module, "TOPIC", None)
        if not isinstance(declared, Topic):
            raise ConfigError(f"course_config/topics/{info.name}.py must declare TOPIC = Topic(...)")
        if declared.slug != info.name:
            raise ConfigError(f"course_config/topics/{info.name}.py declares the topic {declared.slug!r}: "
                              f"name the file after its slug")
        found.append(declared)
    return tuple(sorted(found, key=lambda t: t.number))
