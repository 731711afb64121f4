"""Every use of Optuna's private API, in one place: an Optuna upgrade that moves one of these breaks only here.

We need them because we run Optuna's ask/tell loop ourselves across processes and machines: heartbeats are
sent by `study.optimize` only, stale trials are failed without a reason, and a study hands out its storage
and ids only to its own code. tests/search/test_optuna_private_boundary.py fails when another module of
open_autoglm reaches into Optuna's private names.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import FrozenTrial


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a study reads and writes through (with Optuna's cache in front of an RDB)."""
    return study._storage


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a trial (its `number` counts within the study; the storage wants the id)."""
    return trial._trial_id


def heartbeat_storage(study: optuna.Study) -> Any | None:
    """The study's storage when it records heartbeats (an RDB with heartbeats on), else None (a journal file).

    Typed Any: its heartbeat methods (`record_heartbeat`, `get_heartbeat_interval`) come from a private base.
    """
    storage = study._storage
    return storage if isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage) else None


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """Ids of the study's running trials whose heartbeat stopped; [] where the storage keeps no heartbeats."""
    storage = heartbeat_storage(study)
    return [] if storage is None else list(storage._get_stale_trial_ids(study._study_id))


def distribution_contains(distribution: BaseDistribution, value: Any) -> bool:
    """Whether a distribution can produce `value` (ValueError or TypeError when it is not even of its kind)."""
    return bool(distribution._contains(distribution.to_internal_repr(value)))
