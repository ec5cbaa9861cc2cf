"""`dutybot doctor` and `dutybot send-test`: is every channel, chat and the database ready?"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.channels.base import ChannelStartError, Check, DeliveryResult
from bot.channels.registry import build_channels
from bot.cli_locate import CliError, locate, require_current, safe_url, schema_problem
from bot.clock import SystemClock
from bot.runtime import Runtime
from bot.webhook_send import Endpoint, read_endpoints
from domain.config import ChatConfig, Config, DingtalkChannelConfig, WecomChannelConfig
from domain.config.webhooks import target_of
from domain.messages import OutboundMessage
from store import channel_status
from store.db import schema_state
from store.models import ChannelStatus
from store.outbox_targets import TargetState, target_states

PLATFORM_NAMES = {"wecom": "企业微信", "dingtalk": "钉钉"}
NO_CHANNEL_ON = "没有启用任何平台通道：消息只记录在数据库中，不会发到企业微信或钉钉。设置下列环境变量即可启用："
NO_CHANNEL_CONFIGURED = ("配置中没有平台通道（[[channels]]）：消息只记录在数据库中，不会发到企业微信或钉钉。"
                         "接入方法见 README“接入企业微信”“接入钉钉”。")
CHANNEL_VARIABLES = "通道 {channel}（{platform}）：{names}"
CHAT_VARIABLES = "；群 {chat} 用自己的群机器人：{names}"
DB_OK = "数据库可连接，结构为最新版本（{revision}）：{url}"
DB_DOWN = "数据库无法连接：{url}（{error}）"
STATUS_FAILED = "读取投递记录失败（{error}）"
DONE_FAILED = "检查完成：{count} 项有问题。"
DONE_OK = "检查完成：全部正常。"
RECENT = "最近投递："
WEBHOOK_ON = "对外推送 {id} 已启用：{where}（事件：{events}）"
WEBHOOK_FAILED = ("对外推送 {id}：{n} 条事件被接收方拒收，已放弃投递（最近一次：{error}）。"
                  "请核对地址和签名密钥（环境变量 {url_env}、{secret_env}），或请接收方检查验签与处理；"
                  "此后有事件投递成功，本项即恢复正常。")
WEBHOOK_STUCK = ("对外推送 {id}：{n} 条事件等待投递，最早的应于 {at} 发出，已过 {minutes} 分钟："
                 "请确认 `dutybot serve` 在运行、接收方可访问。")
WEBHOOK_QUEUED = "对外推送 {id}：{n} 条事件排队中。"
STUCK_AFTER = timedelta(minutes=15)  # retries back off to 10 minutes: older than this is not a retry
SEND_TEST_TEXT = "【测试】舆情值班助手连通性测试（{time}）。收到本消息并看到 @提醒，说明本群配置正确，无需回复。"
SEND_OK = "发送成功：{detail}"
SEND_FAILED = "发送失败（{kind}）：{detail}"
UNKNOWN_CHAT = "配置中没有群聊“{chat}”。可用的群聊：{chats}。"
NO_SENDER = "群聊“{chat}”没有已启用的通道：请检查 [[channels]] 的 chats 和相应环境变量（dutybot doctor）。"


# -- doctor -----------------------------------------------------------------------------------------


def channel_variables(config: Config) -> list[str]:
    """For each configured channel, the variables that turn it on (its own and its chats' robots)."""
    chats = {chat.id: chat for chat in config.chats}
    lines = []
    for channel in config.channels:
        if isinstance(channel, WecomChannelConfig):
            names = [channel.token_env, channel.aes_key_env, channel.webhook_env]
        else:
            assert isinstance(channel, DingtalkChannelConfig)
            names = [channel.app_secret_env, channel.webhook_env, channel.secret_env]
            if channel.mode == "stream":
                names.insert(0, channel.app_key_env)
        line = CHANNEL_VARIABLES.format(channel=channel.id, platform=PLATFORM_NAMES[channel.platform],
                                        names="、".join(names))
        for chat_id in channel.chats:
            own = _own_variables(chats.get(chat_id))
            if own:
                line += CHAT_VARIABLES.format(chat=chat_id, names="、".join(own))
        lines.append(line + "。")
    return lines


def _own_variables(chat: ChatConfig | None) -> list[str]:
    if chat is None:
        return []
    return [name for name in (chat.webhook_env, chat.secret_env) if name is not None]


def _channel_checks(runtime: Runtime, environ: Mapping[str, str]) -> list[Check]:
    try:
        channels, off = build_channels(runtime, environ)
    except ChannelStartError as exc:
        return [Check(False, str(exc))]
    if not runtime.config.channels:
        return [Check(False, NO_CHANNEL_CONFIGURED)]
    if not channels:
        lines = [NO_CHANNEL_ON, *(f"  {line}" for line in channel_variables(runtime.config))]
        return [Check(False, "\n".join(lines))]
    checks = [Check(True, line) for line in off]
    for channel in channels:
        checks += channel.checks()
    return checks


async def doctor_checks(config: Config, environ: Mapping[str, str]) -> tuple[list[Check], list[str]]:
    """Checks of every channel, the spool and the database, plus the last delivery outcomes. A
    failed check never stops the others: an operator fixing one thing wants to see all of them."""
    runtime = Runtime.build(config, SystemClock())
    try:
        checks = _channel_checks(runtime, environ)
        hooks, endpoints = _webhook_checks(config, environ)
        checks += hooks
        checks.append(_spool_check(runtime))
        database, outcomes = await _database_checks(runtime, endpoints)
        return checks + database, outcomes
    finally:
        await runtime.db.dispose()


def _webhook_checks(config: Config, environ: Mapping[str, str]) -> tuple[list[Check], list[Endpoint]]:
    """The outgoing webhooks as `dutybot serve` would read them: each on (its address), off (its
    variables), or the reason the service would refuse to start."""
    try:
        endpoints, off = read_endpoints(config, environ)
    except ChannelStartError as exc:
        return [Check(False, str(exc))], []
    checks = [Check(True, line) for line in off]
    checks += [Check(True, WEBHOOK_ON.format(id=e.subscriber.id, where=e.where, events="、".join(e.subscriber.events)))
               for e in endpoints]
    return checks, endpoints


def _delivery_checks(endpoints: Sequence[Endpoint], states: Mapping[str, TargetState], now: datetime,
                     tz: ZoneInfo) -> list[Check]:
    checks = []
    for endpoint in endpoints:
        sub, state = endpoint.subscriber, states.get(target_of(endpoint.subscriber.id), TargetState())
        if state.failed:
            checks.append(Check(False, WEBHOOK_FAILED.format(id=sub.id, n=state.failed, error=state.last_error,
                                                             url_env=sub.url_env, secret_env=sub.secret_env)))
        if state.oldest_due is not None and now - state.oldest_due > STUCK_AFTER:
            checks.append(Check(False, WEBHOOK_STUCK.format(
                id=sub.id, n=state.waiting, at=f"{state.oldest_due.astimezone(tz):%m-%d %H:%M}",
                minutes=int((now - state.oldest_due).total_seconds() // 60))))
        elif state.waiting:
            checks.append(Check(True, WEBHOOK_QUEUED.format(id=sub.id, n=state.waiting)))
    return checks


async def _database_checks(runtime: Runtime, endpoints: Sequence[Endpoint]) -> tuple[list[Check], list[str]]:
    url = runtime.config.database.url
    try:
        state = await schema_state(url)
    except Exception as exc:  # unreachable server, wrong password, a file that is not a database
        return [Check(False, DB_DOWN.format(url=safe_url(url), error=type(exc).__name__))], []
    problem = schema_problem(state, url)
    if problem is not None:
        return [Check(False, problem)], []
    checks = [Check(True, DB_OK.format(revision="、".join(state.revisions), url=safe_url(url)))]
    outcomes: list[str] = []
    try:
        async with runtime.db.read() as session:
            rows = await channel_status.all_rows(session)
            states = await target_states(session, [target_of(e.subscriber.id) for e in endpoints])
    except Exception as exc:
        return [*checks, Check(False, STATUS_FAILED.format(error=type(exc).__name__))], []
    checks += _delivery_checks(endpoints, states, runtime.clock.now(), runtime.config.tz)
    for row in rows:
        outcomes.append(_outcome_line(row, runtime.config.tz))
        if row.config_error:
            checks.append(Check(False, f"通道 {row.channel} 向群 {row.chat_id} 发送时出现配置错误：{row.last_error}"))
    return checks, outcomes


def _spool_check(runtime: Runtime) -> Check:
    """Messages kept in the local spool while the database could not be written (bot/spool.py)."""
    depth, age = runtime.keeper.state()
    where = runtime.spool.directory
    if depth == 0:
        return Check(True, f"本地暂存（spool）为空：{where}")
    return Check(False, f"本地暂存（spool）中有 {depth} 条消息待补办，最早的已等待 {age / 60:.0f} 分钟（{where}）："
                        "数据库恢复写入后服务会自动补办；请检查数据库并确认 `dutybot serve` 在运行。")


def _outcome_line(row: ChannelStatus, tz: ZoneInfo) -> str:
    ok = row.last_ok_at.astimezone(tz).strftime("%m-%d %H:%M") if row.last_ok_at else "无"
    error = (f"，最近失败 {row.last_error_at.astimezone(tz):%m-%d %H:%M}：{row.last_error}"
             if row.last_error_at else "")
    return f"{row.channel} → {row.chat_id}：最近成功 {ok}{error}"


def cmd_doctor(args: argparse.Namespace) -> int:
    located = locate(args.config, args.database, os.environ)
    config = located.require_config()
    located.announce()
    checks, outcomes = asyncio.run(doctor_checks(config, os.environ))
    for check in checks:
        print(("✓ " if check.ok else "✗ ") + check.text)
    if outcomes:
        print(RECENT)
        for line in outcomes:
            print(f"  {line}")
    failed = [c for c in checks if not c.ok]
    print(DONE_FAILED.format(count=len(failed)) if failed else DONE_OK)
    return 1 if failed else 0


# -- send-test ----------------------------------------------------------------------------------------


async def _send_test(config: Config, chat_id: str, environ: Mapping[str, str]) -> DeliveryResult:
    chat = next((c for c in config.chats if c.id == chat_id), None)
    if chat is None:
        raise CliError(UNKNOWN_CHAT.format(chat=chat_id, chats="、".join(c.id for c in config.chats)))
    await require_current(config.database.url)
    runtime = Runtime.build(config, SystemClock())
    try:
        channels, _ = build_channels(runtime, environ)
        sender = {c: s for channel in channels for c, s in channel.senders().items()}.get(chat_id)
        if sender is None:
            raise CliError(NO_SENDER.format(chat=chat_id))
        async with runtime.db.read() as session:
            on_duty = await runtime.duty.on_duty(session, chat, runtime.clock.now())
        now = runtime.clock.now().astimezone(config.tz)
        text = SEND_TEST_TEXT.format(time=f"{now:%Y-%m-%d %H:%M}")
        await runtime.open_http()
        try:
            return await sender.send(chat, OutboundMessage(chat_id=chat_id, text=text, mentions=on_duty.officers[:1]))
        finally:
            await runtime.close_http()
    finally:
        await runtime.db.dispose()


def cmd_send_test(args: argparse.Namespace) -> int:
    located = locate(args.config, args.database, os.environ)
    config = located.require_config()
    located.announce()
    try:
        result = asyncio.run(_send_test(config, args.chat, os.environ))
    except ChannelStartError as exc:
        raise CliError(str(exc)) from exc
    if result.ok:
        print(SEND_OK.format(detail=result.detail or "errcode 0"))
        return 0
    kind = "配置错误" if result.config_error else ("暂时失败，可稍后重试" if result.retryable else "失败")
    print(SEND_FAILED.format(kind=kind, detail=result.detail), file=sys.stderr)
    return 1
