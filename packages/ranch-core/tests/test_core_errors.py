"""ranch_core.errors: one family that still catches as the builtins it stands for."""

from __future__ import annotations

import inspect

import pytest
from ranch_core import errors


def test_every_error_is_a_ranch_error() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert len(classes) >= 9
    for cls in classes:
        assert issubclass(cls, errors.RanchError), cls


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (errors.StorageUnavailable, ConnectionError),
        (errors.DuplicateTask, ValueError),
        (errors.UnknownBacklog, LookupError),
        (errors.BacklogConflict, ValueError),
        (errors.MissingExtra, ImportError),
    ],
)
def test_errors_catch_as_their_builtin(cls: type, builtin: type) -> None:
    with pytest.raises(builtin):
        raise cls("boom")


def test_publish_failed_names_the_call() -> None:
    error = errors.PublishFailed("still stored", task_id="t1", key="k")
    assert (error.task_id, error.key, str(error)) == ("t1", "k", "still stored")


def test_adapters_reexport_the_core_classes() -> None:
    from ranch_dramatiq import CallExpired, UnknownBacklog

    assert CallExpired is errors.CallExpired and UnknownBacklog is errors.UnknownBacklog
