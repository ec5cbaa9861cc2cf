"""帮助 and the answer to anything the bot does not understand."""

from __future__ import annotations

from dataclasses import dataclass

from domain.messages import Reply
from handlers.context import Context, Outcome
from handlers.parsing import grade_like, parse_grade
from handlers.roster import ROLL_CALL_WORDS
from handlers.router import Router, Usage
from handlers.typos import Suggestion

HELP = """舆情值班助手 · 指令
上报 <内容> — 登记线索（可附链接；@我并附链接亦可；同一链接重复上报时末尾写“新线索”另立）
定级 #编号 重大|较大|一般 — 定级或调整等级（也可直接发“#编号 等级”；下调须写“理由：…”）
转办 #编号 牵头单位[、配合单位] — 指定承办单位（牵头单位签收后变更须写“理由：…”）
签收 #编号 — 牵头单位签收（停止通报计时）
退回 #编号 理由 — 不属本单位职责，交协调人员重新指定
进展 #编号 内容 — 记录处置进展
回应 #编号 方式 [链接] 内容 — 记录公开回应
　方式：网上发布、专家解读、新闻发布会、媒体专访、公开答复、辟谣澄清
办结 #编号 结果 — 办结
不予回应 #编号 理由 — 领导决定不予回应
合并 #编号 #目标编号 — 重复线索并入
移交 #编号 公安|网信 — 移交有关部门
涉密 #编号 [授权摘要] / 解除涉密 #编号 — 协调人员标记涉密线索
查询 #编号 — 详情和处置记录
待办 — 本单位未办结事项
值班 [明天|11-25|本周] — 当班带班领导、值班员及电话
我的值班 — 本人近期班次
换班 @对方 日期[班次] [换 对方日期[班次]] — 对方回复“同意”后换班
代班 日期[班次] — 代他人值班
请假 开始日期 [至 结束日期] [事由] — 由轮班中其他人顶替
销假 [日期] — 取消请假，恢复本人班次
排班 日期[班次] 值班员|带班领导 @某人 — 管理员调整排班
零报告（或“今日无舆情”） — 联络员报告本单位今日无舆情
日志 [昨天|11-25] — 舆情日志（每天定时发送前一日的日志）
专报 #编号 [首报|续报|终报] — 该线索的舆情专报
统计 [本周|上月|11-01 至 11-30] — 定期通报：各单位按时签收率、回应率等
编号可写 #12、＃12 或 12号。一条消息可写多条指令，每行一条。"""
UNKNOWN = "未识别的指令。发送“帮助”查看可用指令。"
# A bare answer that found no question: say so, rather than "unrecognised".
NO_GRADE_QUESTION = "您当前没有待回复的定级询问（可能已定级或已过期）。如需定级或调整等级，请发送“定级 #编号 等级”。"
NO_ROLL_CALL = "本群当前没有需要您应答的点名。"
# A command one character off: the question, then the corrected text alone so it can be copied.
DID_YOU_MEAN = "您是不是要发送“{text}”？"
SHOWN = 30  # longer corrected texts are shortened in the question (the full text follows on its own)
# 特别重大, 四级 … said to nobody's question (with a question, grading.py answers GRADE_LIST).
GRADE_WORDS = "等级只有三级：重大、较大、一般。" + NO_GRADE_QUESTION

router = Router("help")


@dataclass(frozen=True)
class HelpCommand:
    pass


def parse_help(rest: str) -> HelpCommand | Usage:
    return HelpCommand()


@router.command("帮助", "help", "?", "？", "菜单", parse=parse_help, summary="帮助 — 指令列表")
async def show_help(ctx: Context, command: HelpCommand) -> Outcome:
    return Outcome.say(HELP)


@router.unrecognised
async def unknown(ctx: Context, suggestion: Suggestion | None) -> Outcome | None:
    if parse_grade(ctx.text) is not None:
        return Outcome.say(NO_GRADE_QUESTION)
    if grade_like(ctx.text):  # before the suggestion: "四级" is one character from 定级
        return Outcome.say(GRADE_WORDS)
    if ctx.text.strip() in ROLL_CALL_WORDS:
        return Outcome.say(NO_ROLL_CALL)
    if suggestion is not None:
        return did_you_mean(suggestion)
    return Outcome.say(UNKNOWN)


def did_you_mean(suggestion: Suggestion) -> Outcome:
    if suggestion.bare:  # "上保" alone: nothing to copy yet; the command's usage says what to add
        return Outcome.say(DID_YOU_MEAN.format(text=f"{suggestion.text} …") + "\n" + suggestion.usage)
    text = suggestion.text
    first = text.split("\n", 1)[0]
    shown = first if first == text and len(text) <= SHOWN else first[:SHOWN] + "…"
    return Outcome((Reply(DID_YOU_MEAN.format(text=shown)), Reply(text)))
