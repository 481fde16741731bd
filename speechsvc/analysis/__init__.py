"""Analysis of final transcripts and their audio: text normalisation, intent and negativity, voice emotion,
escalation, and whatever stages are added next to them (see :mod:`speechsvc.analysis.base`).

:func:`stage_classes` finds every stage in this package; :func:`load_stages` loads the ones the settings turn
on, once per process.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator, Collection, Sequence

from speechsvc.analysis.base import Stage
from speechsvc.config import Settings
from speechsvc.metrics import Metrics

log = logging.getLogger(__name__)


def stage_classes() -> list[type[Stage]]:
    """Every :class:`Stage` subclass defined in this package (its modules and the modules of its sub-packages: a
    stage of several modules has a folder of its own), in phase order."""
    for module in pkgutil.walk_packages(__path__, f"{__name__}."):
        importlib.import_module(module.name)
    return sorted(Stage.registry, key=lambda cls: (cls.phase, cls.name))


def load_stages(settings: Settings, only: Collection[str] | None = None) -> list[Stage]:
    """Load the stages the settings turn on (blocking: models and rules); ``only`` restricts them by name.

    Raises:
        ModelUnavailable, ValueError: as the stages' ``load`` (a missing model, an invalid rules file).
    """
    classes = [cls for cls in stage_classes() if only is None or cls.name in only]
    if only is not None and (unknown := set(only) - {cls.name for cls in classes}):
        raise ValueError(f"unknown analysis stages {sorted(unknown)}")
    return [stage for cls in classes if (stage := cls.load(settings)) is not None]


async def reload_stages(stages: Sequence[Stage]) -> dict[str, bool]:
    """Every running stage's :meth:`~Stage.reload` (the service does this on SIGHUP): by stage name, whether its
    new models or rules are in use (stages with nothing to reload are left out)."""
    done = {}
    for stage in stages:
        outcome = await stage.reload(stages)
        if outcome is not None:
            done[stage.name] = outcome
    if not done:
        log.warning("reload: no running stage has anything to reload")
    return done


@contextlib.asynccontextmanager
async def started(stages: Sequence[Stage], metrics: Metrics | None = None) -> AsyncIterator[Sequence[Stage]]:
    """Stages started on this event loop for the block (tools and evaluations; the engine does this itself)."""
    metrics = metrics or Metrics()
    for stage in stages:
        await stage.start(metrics)
    try:
        yield stages
    finally:
        for stage in stages:
            await stage.stop()
