"""``parsers.jobs.default_jobs``: the CPUs the process may use (its affinity mask), capped, never below one."""

from __future__ import annotations

import os

import pytest

from parsers import jobs


def test_follows_the_affinity_mask_not_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert jobs.default_jobs() == 1


def test_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(40)), raising=False)
    assert jobs.default_jobs() == jobs.MAX_JOBS == 8


def test_without_affinity_uses_the_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(pid: int) -> set[int]:
        raise AttributeError("no sched_getaffinity here")

    monkeypatch.setattr(os, "sched_getaffinity", missing, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert jobs.default_jobs() == 3
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert jobs.default_jobs() == 1
