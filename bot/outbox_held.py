"""Messages a robot refuses for a configuration reason (WeCom 93000, DingTalk 310000/300001, a
missing webhook): they are held, not failed, and the admins are told on a chat that reaches a
person. Retrying at once would only be refused again; dropping them would lose a reminder. A
periodic probe (OutboxWorker.probe_held) tries one held message per chat; the first post the
robot accepts releases the rest, which then go out (folded into digests if they outgrew the
budget meanwhile)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import DeliveryResult, Sender
from domain.config import ChatConfig
from domain.directory import Directory
from domain.vocab import Role
from store import outbox
from store.models import OutboxMessage

log = logging.getLogger(__name__)

CONFIG_ALERT = (
    "【系统告警】通道 {channel} 向“{chat}”发送消息失败，原因是配置错误：{detail}。\n"
    "该消息及此后发往该群的消息已暂存，不会丢失：机器人恢复接收后自动补发（每{every}检测一次，重启服务后立即检测）。"
    "请管理员检查该群机器人的 webhook 地址和密钥，修正后运行 `dutybot doctor` 复查。"
)
NO_ADMIN_CHAT = (
    "no admin chat reaches a person for the config error of chat %s: configure a platform chat with admins = true "
    "that uses another robot"
)


def every_text(seconds: int) -> str:
    return f"{seconds // 60}分钟" if seconds % 60 == 0 else f"{seconds}秒"


def alert_targets(
    directory: Directory, senders: Mapping[str, Sender], failing: ChatConfig | None, robot: str | None,
    robot_of: Callable[[Sender, ChatConfig], str],
) -> list[ChatConfig]:
    """The admins' chats that can carry the alert: not the failing chat, nor one posting through
    the same robot (its alert would be refused, and held, too)."""
    targets = []
    for chat in directory.admin_chats():
        sender = senders.get(chat.id)
        if failing is not None and chat.id == failing.id:
            continue
        if sender is not None and robot is not None and robot_of(sender, chat) == robot:
            continue
        targets.append(chat)
    return targets


async def alert_admins(
    session: AsyncSession, *, directory: Directory, senders: Mapping[str, Sender], channel: str, row: OutboxMessage,
    result: DeliveryResult, now: datetime, robot: str | None, robot_of: Callable[[Sender, ChatConfig], str],
    probe_seconds: int,
) -> None:
    """Queue the alert in every admins' chat that can carry it, once per hour and failing chat."""
    chat = directory.chats.get(row.chat_id)
    admins = [p.id for p in directory.people_with(Role.ADMIN)]
    targets = alert_targets(directory, senders, chat, robot, robot_of)
    if not any(target.id in senders for target in targets):
        # A local chat is only a record in the database: nobody is notified there.
        log.error(NO_ADMIN_CHAT, row.chat_id)
    text = CONFIG_ALERT.format(channel=channel, chat=chat.name if chat else row.chat_id, detail=result.detail,
                               every=every_text(probe_seconds))
    for target in targets:
        await outbox.enqueue(
            session, key=f"alert:config:{channel}:{row.chat_id}:{now:%Y%m%d%H}:{target.id}",
            chat_id=target.id, mentions=admins, now=now, text=text,
        )
