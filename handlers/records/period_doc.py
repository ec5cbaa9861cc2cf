"""The 定期通报 as a Document (handlers/records/document.py): the words and tables of the figures of
period.py, the same in the chat, in Markdown, XLSX and CSV. All its user-facing text is here.

  一、总体情况   the figures of the whole county in one paragraph
  二、各单位情况 per unit: items by grade, on-time 签收 / 回应, 提醒 / 催办, days without 零报告, rank
  三、办理用时   median and 90th percentile of the time to 签收 and to 回应
  四、超时事项   each 签收 / 回应 done late or still owed, with how late (涉密: the authorised summary)
  五、通报       the ranking, and the units below the on-time threshold named
"""

from __future__ import annotations

from datetime import date, timedelta

from domain.directory import Directory
from domain.vocab import Grade
from handlers.deadline_rules import ClockName
from handlers.items import shorten
from handlers.policy import local_time
from handlers.records.document import Block, Document, Heading, Paragraph, Table
from handlers.records.period import ClockFigures, PeriodNotice, UnitFigures, paused_gc

TITLE = "舆情处置情况{span}通报"
SUBTITLE = "统计时段：{first}至{last}"
PARTIAL = "（截至{now}）"
NONE = "—"
UNGRADED = "未定级"
NO_LEAD = "未明确牵头单位"
OVERVIEW = ("本期受理舆情线索{total}条{grades}，其中合并重复线索{merged}条；"
            "截至期末办结{closed}条、不予回应{no_response}条。应签收{p_owed}条，按时签收{p_on}条，按时签收率{p_rate}；应回应{r_owed}条，按时回应{r_on}条，按时回应率{r_rate}；"
            "超时事项{overdue}项。向承办单位发送提醒{reminders}次、催办{urges}次。")
UNITS_HEADERS = ("排名", "单位", "重大", "较大", "一般", UNGRADED, "合计", "应签收", "按时签收", "按时签收率", "应回应",
                 "按时回应", "按时回应率", "提醒", "催办", "零报告缺报天数")
UNITS_WIDTHS = (6, 28, 6, 6, 6, 8, 6, 8, 10, 12, 8, 10, 12, 6, 6, 16)
TIMES_HEADERS = ("单位", "签收用时中位数", "签收用时90%分位", "回应用时中位数", "回应用时90%分位")
TIMES_WIDTHS = (28, 18, 18, 18, 18)
ALL_UNITS = "全部"
OVERDUE_HEADERS = ("编号", "牵头单位", "等级", "环节", "时限", "完成时间", "超时时长", "摘要")
OVERDUE_WIDTHS = (8, 28, 6, 6, 14, 16, 16, 40)
NOT_DONE = {ClockName.PASS_ON: "未签收", ClockName.RESPONSE: "未回应"}
STOPPED = {"merged": "已合并", "no_response": "不予回应", "closed": "已办结"}
STEP = {ClockName.PASS_ON: "签收", ClockName.RESPONSE: "回应"}
NO_OVERDUE = "本期无超时事项。"
NO_TIMES = "本期无已签收或已回应的应办事项。"
RANKING = "按综合按时率（按时签收、按时回应合计）排名：{ranking}。"
NO_RANKING = "本期无应签收、应回应事项，不作排名。"
BELOW = "按时签收率或按时回应率低于{threshold}的单位：{units}。请上述单位分管领导督促整改，严格落实签收、回应时限。"
BELOW_UNIT = "{unit}（{rates}）"
ALL_ABOVE = "本期各单位按时签收率、按时回应率均不低于{threshold}。"
NOTE = ("说明：应签收、应回应为时限在本期内的事项（已合并、不予回应且未到时限的除外），按牵头单位统计；"
        "用时自上报时起算，90%分位按最近秩法取值；提醒、催办计入发送时的牵头单位；零报告缺报天数为既未报送舆情也未零报告的天数。")
SUMMARY_MAX = 40


def period_document(notice: PeriodNotice, directory: Directory, *, late: bool = False) -> Document:
    tz = directory.config.tz
    period = notice.period
    subtitle = SUBTITLE.format(first=_day(period.first), last=_day(period.last, same_year=period.first.year))
    if notice.partial:
        subtitle += PARTIAL.format(now=local_time(notice.cut, tz))
    with paused_gc():  # a month's list is tens of thousands of rows (see period.paused_gc)
        blocks: list[Block] = [
            Heading("一、总体情况"), Paragraph(_overview(notice)),
            Heading("二、各单位情况"), _units_table(notice, directory),
            Heading("三、办理用时"), *_times(notice, directory),
            Heading("四、超时事项"), *_overdue(notice, directory),
            Heading("五、通报"), *_verdict(notice, directory), Paragraph(NOTE),
        ]
    return Document(TITLE.format(span=period.span.value), tuple(blocks), subtitle=subtitle, late=late)


def _overview(notice: PeriodNotice) -> str:
    total = notice.totals()
    parts = [f"{grade.value}{notice.reported.get(grade, 0)}条" for grade in Grade]
    if notice.reported.get(None):
        parts.append(f"{UNGRADED}{notice.reported[None]}条")
    return OVERVIEW.format(
        total=notice.total, grades=f"（{'、'.join(parts)}）" if notice.total else "", merged=notice.merged,
        closed=notice.closed, no_response=notice.no_response, p_owed=total.pass_on.owed, p_on=total.pass_on.on_time,
        p_rate=rate_text(total.pass_on.rate), r_owed=total.response.owed, r_on=total.response.on_time,
        r_rate=rate_text(total.response.rate), overdue=len(notice.overdue), reminders=total.reminders,
        urges=total.urges,
    )


def _units_table(notice: PeriodNotice, directory: Directory) -> Table:
    rows = []
    for unit in notice.units:
        grades = [unit.by_grade.get(g, 0) for g in (*Grade, None)]
        rows.append((
            unit.rank if unit.rank is not None else NONE, unit_name(unit.unit, directory), *grades, unit.items,
            unit.pass_on.owed, unit.pass_on.on_time, rate_text(unit.pass_on.rate), unit.response.owed,
            unit.response.on_time, rate_text(unit.response.rate), unit.reminders, unit.urges, unit.zero_missed,
        ))
    return Table("各单位情况", UNITS_HEADERS, tuple(rows), UNITS_WIDTHS)


def _times(notice: PeriodNotice, directory: Directory) -> list[Block]:
    rows = [_times_row(unit_name(u.unit, directory), u) for u in notice.units
            if u.pass_on.durations or u.response.durations]
    if not rows:
        return [Paragraph(NO_TIMES)]
    rows.append(_times_row(ALL_UNITS, notice.totals()))
    return [Table("办理用时", TIMES_HEADERS, tuple(rows), TIMES_WIDTHS)]


def _times_row(name: str, unit: UnitFigures) -> tuple[str, ...]:
    def both(clock: ClockFigures) -> tuple[str, str]:
        return duration_text(clock.median), duration_text(clock.p90)
    return (name, *both(unit.pass_on), *both(unit.response))


def _overdue(notice: PeriodNotice, directory: Directory) -> list[Block]:
    if not notice.overdue:
        return [Paragraph(NO_OVERDUE)]
    tz = directory.config.tz
    # A month lists tens of thousands: each unit's name, each grade's and step's word found once.
    names = {unit: unit_name(unit, directory) for unit in {o.unit for o in notice.overdue}}
    grades: dict[Grade | None, str] = {grade: grade.value for grade in Grade} | {None: UNGRADED}
    not_done = {clock: f"{NOT_DONE[clock]}（截至{local_time(notice.cut, tz)}）" for clock in NOT_DONE}
    rows = [(f"#{number}", names[unit], grades[grade], STEP[clock], local_time(due, tz),
             local_time(done, tz) if done is not None else
             STOPPED.get(stopped, stopped) if stopped is not None else not_done[clock],
             duration_text(late_by), summary if len(summary) <= SUMMARY_MAX else shorten(summary, SUMMARY_MAX))
            for _, number, unit, grade, clock, due, done, stopped, late_by, summary in notice.overdue]
    return [Table("超时事项", OVERDUE_HEADERS, tuple(rows), OVERDUE_WIDTHS)]


def _verdict(notice: PeriodNotice, directory: Directory) -> list[Block]:
    ranked = [u for u in notice.units if u.rank is not None]
    blocks: list[Block] = []
    if ranked:
        ranking = "；".join(f"{u.rank}.{unit_name(u.unit, directory)}（{rate_text(u.combined_rate)}）" for u in ranked)
        blocks.append(Paragraph(RANKING.format(ranking=ranking)))
    else:
        blocks.append(Paragraph(NO_RANKING))
    threshold = rate_text(notice.threshold)
    below = notice.below()
    if below:
        units = "、".join(BELOW_UNIT.format(unit=unit_name(u.unit, directory), rates=_low_rates(u, notice.threshold))
                         for u in below)
        blocks.append(Paragraph(BELOW.format(threshold=threshold, units=units)))
    elif ranked:
        blocks.append(Paragraph(ALL_ABOVE.format(threshold=threshold)))
    return blocks


def _low_rates(unit: UnitFigures, threshold: float) -> str:
    low = [f"按时{STEP[name]}率{rate_text(rate)}" for name, rate in
           ((ClockName.PASS_ON, unit.pass_on.rate), (ClockName.RESPONSE, unit.response.rate))
           if rate is not None and rate < threshold]
    return "，".join(low)


# -- words for figures -------------------------------------------------------------------------------------


def unit_name(unit: str | None, directory: Directory) -> str:
    return directory.unit_name(unit) if unit is not None else NO_LEAD


def rate_text(rate: float | None) -> str:
    """0.75 → "75.0%"; None (nothing owed) → "—"."""
    return NONE if rate is None else f"{rate * 100:.1f}%"


def duration_text(span: timedelta | None) -> str:
    """A span to the nearest minute: "35分钟", "1小时10分钟", "1天10小时55分钟", "6天8小时"."""
    if span is None:
        return NONE
    minutes = int((span.total_seconds() + 30) // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    text = (f"{days}天" if days else "") + (f"{hours}小时" if hours else "")
    return text + (f"{minutes}分钟" if minutes or not text else "")


def _day(day: date, *, same_year: int | None = None) -> str:
    """"2026年9月21日", or "9月27日" in the year already named."""
    return f"{day.month}月{day.day}日" if day.year == same_year else f"{day.year}年{day.month}月{day.day}日"
