"""`零报告` / `今日无舆情` in chat: parse, the operation (handlers/ops/zero_report.py), the answer.

`零报告` alone covers the sender's own units; `零报告 城关镇、东风社区` names them (a town's liaison
may answer for its community). `今日无舆情` is the same, said as people say it: words after it
that name no unit ("今日无舆情，特此报告") are part of the sentence, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.context import Context, Outcome
from handlers.ops.zero_report import ZeroRefusal, ZeroRefused, ZeroReported, zero_report
from handlers.parsing import split_list
from handlers.policy import local_time
from handlers.router import Router, Usage

RECORDED = "已登记零报告：{units}，{day}无舆情。"
ALREADY = "{unit}今日已零报告（{who} {time}），无需重复报送。"
HAS_ITEMS = "{unit}今日已有舆情 {numbers}，不作零报告。"
NO_UNIT_ROLE = ("零报告由各单位联络员发送（联络员不在时可由本单位主要负责人、分管领导发送）；"
                "您未登记为任何单位的联络员或负责人。")
NOT_OF_UNIT = "您不是{unit}的联络员或负责人，不能代其零报告。零报告由本单位联络员（或主要负责人、分管领导）发送。"
UNKNOWN_UNIT = "未找到单位“{name}”。用法：零报告 [单位名称]，例如：零报告 城关镇"

# Words people add to the sentence ("零报告：本单位今日无舆情，特此报告"): not unit names.
FILLER = ("无舆情", "今日", "今天", "本单位", "特此报告", "报告", "请审阅")

router = Router("zero-report")


@dataclass(frozen=True)
class ZeroCommand:
    names: tuple[str, ...]  # the units named (empty: the sender's own)
    strict: bool  # every name must be a unit (零报告); else words naming none are ignored (今日无舆情)


def _names(rest: str) -> tuple[str, ...]:
    words = split_list(rest.replace("。", " ").replace("！", " "))
    return tuple(w for w in words if not any(w == f or (len(f) > 2 and f in w) for f in FILLER))


def parse_zero(rest: str) -> ZeroCommand | Usage:
    return ZeroCommand(_names(rest), strict=True)


def parse_nothing_today(rest: str) -> ZeroCommand | Usage:
    return ZeroCommand(_names(rest), strict=False)


@router.command("零报告", parse=parse_zero, summary="零报告 [单位] — 本单位今日无舆情（联络员每日报送）")
async def zero(ctx: Context, command: ZeroCommand) -> Outcome:
    return await _zero(ctx, command)


@router.command("今日无舆情", parse=parse_nothing_today, summary="今日无舆情 — 同“零报告”")
async def nothing_today(ctx: Context, command: ZeroCommand) -> Outcome:
    return await _zero(ctx, command)


async def _zero(ctx: Context, command: ZeroCommand) -> Outcome:
    units: list[str] = []
    for name in command.names:
        unit = ctx.directory.find_unit(name)
        if unit is not None:
            units.append(unit.id)
        elif command.strict:
            return Outcome.say(UNKNOWN_UNIT.format(name=name))
    result = await zero_report(ctx.work(), ctx.actor(), ctx.chat, units)
    if isinstance(result, ZeroRefused):
        return await _refused(ctx, result)
    return Outcome.say("\n".join(_lines(ctx, result)))


async def _refused(ctx: Context, refused: ZeroRefused) -> Outcome:
    if refused.refusal is ZeroRefusal.NO_UNIT_ROLE:
        return await ctx.refuse(NO_UNIT_ROLE, action="零报告")
    return await ctx.refuse(NOT_OF_UNIT.format(unit=ctx.directory.unit_name(refused.unit)), action="零报告")


def _lines(ctx: Context, result: ZeroReported) -> list[str]:
    lines: list[str] = []
    if result.recorded:
        units = "、".join(ctx.directory.unit_name(u) for u in result.recorded)
        lines.append(RECORDED.format(units=units, day=f"{result.day.month}月{result.day.day}日"))
    for entry in result.already:
        lines.append(ALREADY.format(unit=ctx.directory.unit_name(entry.unit), who=ctx.name(entry.actor),
                                    time=local_time(entry.at, ctx.tz).split(" ")[-1]))
    for unit, numbers in result.has_items:
        lines.append(HAS_ITEMS.format(unit=ctx.directory.unit_name(unit),
                                      numbers="、".join(f"#{n}" for n in numbers)))
    return lines
