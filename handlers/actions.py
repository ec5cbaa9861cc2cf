"""The Chinese name of every action the audit trail records (item_events.action).

One map for every place a person reads an action: the 处置记录 of 查询, the API's timeline, the
audit export (CSV, XLSX and the JSON lines' action_label), the records of issue #16. A new action
recorded anywhere needs its name here: tests/test_audit_export.py reads the code for every
`record(...)` and fails on an action without one.
"""

from __future__ import annotations

ACTIONS: dict[str, str] = {
    # an item's life (handlers/ops)
    "reported": "上报",
    "supplement": "补充信息",  # the same link reported again: kept as more information on the item
    "graded": "定级",
    "regraded": "调整等级",
    "assigned": "转办",
    "acknowledged": "签收",
    "co_acknowledged": "配合单位签收",
    "returned": "退回",
    "progress": "进展",
    "responded": "回应",
    "closed": "办结",
    "no_response": "不予回应",
    "merged": "合并",  # on the duplicate
    "absorbed": "并入重复线索",  # on the item the duplicate went into
    "referred": "移交",
    "classified": "标记涉密",
    "declassified": "解除涉密",
    "classified_export": "导出涉密专报",  # a 涉密 item's 专报 written in full (dutybot report item --classified)
    "refused": "操作被拒绝",
    "notice": "发送通知",  # every notice, reminder and 催办 the bot posted about an item, per chat
    "zero_report": "零报告",  # a unit's daily "nothing to report" (issue #16); names the unit in after
    # the duty roster (handlers/ops/roster_*, handlers/roster*, bot/roster_jobs.py)
    "roster_import": "导入值班表",
    "roster_assign": "指定排班",
    "roster_override": "管理员替班",
    "roster_swap_asked": "发起换班申请",
    "roster_swap_declined": "拒绝换班",
    "roster_swap": "换班生效",
    "roster_cover": "代班",
    "roster_leave": "请假",
    "roster_leave_cancelled": "销假",
    "roll_call_answered": "应答点名",
    "roll_call_unanswered": "点名无人应答",
    # the intake API's tokens (store/api_tokens.py)
    "api_token_created": "创建接口令牌",
    "api_token_revoked": "吊销接口令牌",
}


def action_label(action: str) -> str:
    """The action's Chinese name; an unknown code (a newer version's row) as it is."""
    return ACTIONS.get(action, action)
