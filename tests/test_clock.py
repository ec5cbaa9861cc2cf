"""The injected clocks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.cli import main
from bot.clock import ManualClock, ScaledClock
from tests.conftest import EXAMPLE_CONFIG, START


def test_scaled_clock_runs_n_times_faster() -> None:
    wall = ManualClock(START)
    drill = ScaledClock(60, base=wall)
    assert drill.now() == START
    wall.advance(timedelta(minutes=1))
    assert drill.now() == START + timedelta(hours=1)
    wall.advance(timedelta(seconds=30))
    assert drill.now() == START + timedelta(hours=1, minutes=30)
    with pytest.raises(ValueError):
        ScaledClock(0.5, base=wall)


def test_manual_clock_refuses_naive_times() -> None:
    with pytest.raises(ValueError):
        ManualClock(START.replace(tzinfo=None))


def test_serve_refuses_speed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(EXAMPLE_CONFIG), "--speed", "60"]) == 2
    assert "--speed 只用于演练" in capsys.readouterr().err


def test_demo_rejects_an_absurd_speed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--speed", "0.5"]) == 2
    assert "--speed 应在 1 到 3600 之间" in capsys.readouterr().err
