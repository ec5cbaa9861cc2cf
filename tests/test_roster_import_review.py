"""The CLI's roster overrides confirmed as the roster will actually be (issue #14 point 1): `roster
import` of 排班/替班/请假 rows prints who holds each shift read back from the written roster, a dry
run shows the same and writes nothing, and a row putting someone on duty while on leave refuses
the whole file. Runs the command's own coroutine with a fixed clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bot.roster_cli import _import
from domain.config import Config
from store import roster as store
from store.db import Database
from tests.conftest import SHANGHAI
from tests.roster_support import EXAMPLE_ROSTER, csv_text

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=SHANGHAI)
WECOM = "清河县舆情值班群（企业微信）"
Capture = pytest.CaptureFixture[str]

ASSIGN_SUN_LI = {"类型": "排班", "群聊": "wecom_duty", "日期": "2026-11-25", "班次": "白班", "角色": "值班员",
                 "人员": "孙丽"}
SUN_LI_FOR_ZHAO_MIN = {"类型": "替班", "群聊": "wecom_duty", "人员": "孙丽", "被替换人员": "赵敏",
                       "开始": "2026-11-26 17:30", "结束": "2026-11-27 08:30"}
SUN_LI_AWAY = {"类型": "请假", "人员": "孙丽", "开始": "2026-11-25", "结束": "2026-11-25", "备注": "培训"}


async def stored(config: Config) -> tuple[int, int, int]:
    """(assignments, overrides, leaves) in the database."""
    db = Database(config.database.url)
    try:
        async with db.read() as session:
            return (len(await store.assignments(session, None)), len(await store.overrides(session, None)),
                    len(await store.leaves(session)))
    finally:
        await db.dispose()


async def with_example(config: Config, capsys: Capture) -> None:
    assert await _import(config, EXAMPLE_ROSTER, False, NOW) == 0
    capsys.readouterr()


def file_of(tmp_path: Path, *rows: dict[str, str]) -> Path:
    path = tmp_path / "changes.csv"
    path.write_text(csv_text(*rows), encoding="utf-8")
    return path


async def test_overrides_are_confirmed_as_read_back_and_a_dry_run_writes_nothing(
    config: Config, tmp_path: Path, capsys: Capture
) -> None:
    await with_example(config, capsys)
    path = file_of(tmp_path, ASSIGN_SUN_LI, SUN_LI_FOR_ZHAO_MIN)
    expected = [
        "导入后将是（按导入后的值班表读出）：",
        f"第2行 排班：{WECOM} 11月25日 白班 值班员：孙丽",
        f"第3行 替班：{WECOM} 孙丽 替 赵敏",
        f"  {WECOM} 11月26日 夜班 17:30—次日08:30 值班员：孙丽",
        "（--dry-run：未写入数据库）",
    ]
    assert await _import(config, path, True, NOW) == 0
    assert capsys.readouterr().out.splitlines()[1:] == expected
    assert await stored(config) == (0, 0, 0)

    assert await _import(config, path, False, NOW) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "导入后的值班安排（按导入后的值班表读出）："
    assert out[2:5] == expected[1:4]
    assert out[5].startswith("已导入，排班已生成至 ")
    assert await stored(config) == (1, 1, 0)


async def test_a_leave_names_who_covers_each_of_its_shifts(config: Config, tmp_path: Path, capsys: Capture) -> None:
    await with_example(config, capsys)
    assert await _import(config, file_of(tmp_path, {**SUN_LI_AWAY, "开始": "2026-11-24", "结束": "2026-11-24"}),
                         False, NOW) == 0
    out = capsys.readouterr().out.splitlines()
    # In the example 孙丽 and 赵敏 alternate 24 hours on, 24 off: 赵敏 cannot take 孙丽's shifts
    # within the 24-hour limit, so each is named as a gap, never confirmed as covered.
    nobody = "无人可顶替，请补排（见 dutybot roster check）"
    assert out[2:] == [
        "第2行 请假：孙丽 11月24日 00:00 至 11月25日 00:00",
        f"  清河县舆情值班群（钉钉） 11月23日 夜班（其中 11月24日 00:00—08:30） 值班员：{nobody}",
        f"  {WECOM} 11月23日 夜班（其中 11月24日 00:00—08:30） 值班员：{nobody}",
        f"  清河县舆情值班群（钉钉） 11月24日 白班 08:30—17:30 值班员：{nobody}",
        f"  {WECOM} 11月24日 白班 08:30—17:30 值班员：{nobody}",
        out[-1],
    ]
    assert out[-1].startswith("已导入")


@pytest.mark.parametrize("leave_first", [True, False])
async def test_putting_someone_on_duty_during_their_leave_refuses_the_file(
    config: Config, tmp_path: Path, capsys: Capture, leave_first: bool
) -> None:
    await with_example(config, capsys)
    if leave_first:  # the leave is already stored
        assert await _import(config, file_of(tmp_path, SUN_LI_AWAY), False, NOW) == 0
        rows, row = [ASSIGN_SUN_LI, SUN_LI_FOR_ZHAO_MIN], 2
    else:  # the leave is in the same file, after the 排班 row
        rows, row = [ASSIGN_SUN_LI, SUN_LI_AWAY], 2
    capsys.readouterr()
    before = await stored(config)
    assert await _import(config, file_of(tmp_path, *rows), False, NOW) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-2] == f"{tmp_path / 'changes.csv'} 有 1 行有误，未导入任何内容："
    assert err[-1] == f"  第{row}行：孙丽 11月25日 请假（培训），不能排班。请删除该行，或先取消请假。"
    assert await stored(config) == before  # nothing of the file was kept
