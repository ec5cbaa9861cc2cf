"""The `dutybot` command line: demo, serve, check-config, db upgrade, audit export."""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bot import logs
from bot.app import LIVE_CHANNELS, SIMULATOR, create_app
from bot.channels.base import ChannelStartError, Check, DeliveryResult
from bot.channels.registry import build_channels
from bot.clock import Clock, ScaledClock, SystemClock
from bot.config import Config, ConfigError, check_database_url, load_config, read_config
from bot.messages import OutboundMessage
from bot.roster_cli import add_roster_commands, ensure_demo_roster
from bot.runtime import Runtime
from store import audit, channel_status
from store.db import Database
from store.models import ChannelStatus

DEMO_DATABASE = "sqlite+aiosqlite:///var/demo.db"
BUNDLED_EXAMPLE = Path(__file__).resolve().parent / "examples" / "config.example.toml"
log = logging.getLogger("dutybot")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def safe_url(url: str) -> str:
    """A database URL fit for the screen and logs: the password is masked."""
    return make_url(url).render_as_string(hide_password=True)


class CliError(Exception):
    """An error the operator can fix; printed without a traceback."""


# -- helpers ------------------------------------------------------------------------------------


def _load(path: Path, database: str | None) -> Config:
    try:
        config = load_config(path)
    except ConfigError as exc:
        lines = "\n".join(f"  {p}" for p in exc.problems)
        raise CliError(f"配置文件 {path} 有误：\n{lines}\n请修改后用 `dutybot check-config {path}` 复查。") from exc
    return config.with_database(_checked_url(database)) if database else config


def _checked_url(url: str) -> str:
    try:
        return check_database_url(url)
    except ValueError as exc:
        raise CliError(f"--database {safe_url(url)} 不可用：{exc}。") from None


def _example_config() -> Path:
    local = Path("config.example.toml")
    return local if local.exists() else BUNDLED_EXAMPLE


def _config_for_db(args: argparse.Namespace) -> Config | None:
    if args.config:
        return _load(Path(args.config), args.database)
    if Path("config.toml").exists():
        return _load(Path("config.toml"), args.database)
    return None


def _database_url(args: argparse.Namespace) -> str:
    config = _config_for_db(args)
    if args.database:
        return _checked_url(str(args.database))
    if config is not None:
        return config.database.url
    raise CliError("请用 --config FILE 或 --database URL 指明数据库。")


# -- serve / demo ---------------------------------------------------------------------------------


SIMULATOR_WITH_CHANNELS = (
    "本地模拟通道已开启（[server] simulator = true），同时平台通道 {channels} 已启用：模拟通道让本机上的任何人"
    "以任何人员的身份发言。请在配置中关闭模拟通道；确需同时开启时，加参数 --allow-simulator 启动。\n服务未启动。"
)


# After a stop signal the process is gone within [delivery] shutdown_seconds plus this, whatever
# the platforms do: the app's own stop ends within the bound and about a second and a half (its
# posts in flight cut off, its claims released); the watchdog is the last resort.
CLEANUP_MARGIN = 1.5
HARD_EXIT_MARGIN = 1.9
STOPPING = "正在停止（最长约 {seconds:g} 秒）……"
FORCED_EXIT = "停止超时：强制退出（未发出的消息已交回，由其他实例或下次启动发送）。"


class StopWatchdog:
    """Armed at a stop signal: exits the process if it has not finished by then — an event-loop
    task that ignores cancellation or a thread stuck in a system call must not keep a replica
    half-stopped. Disarmed once `asyncio.run` has returned."""

    def __init__(self) -> None:
        self._timer: threading.Timer | None = None

    def arm(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True  # never what keeps the interpreter alive
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @staticmethod
    def _expire() -> None:
        sys.stderr.write(FORCED_EXIT + "\n")
        sys.stderr.flush()
        os._exit(1)


async def _serve(
    config: Config, host: str, port: int, announce: Callable[[str], None], environ: Mapping[str, str],
    simulator: bool | None = None, clock: Clock | None = None, allow_simulator: bool = True,
    watchdog: StopWatchdog | None = None,
) -> None:
    try:
        app = create_app(config, clock=clock or SystemClock(), environ=environ, simulator=simulator)
    except ChannelStartError as exc:
        raise CliError(f"{exc}\n服务未启动。") from exc
    live: tuple[str, ...] = app[LIVE_CHANNELS]
    if app[SIMULATOR] and live and not allow_simulator:
        raise CliError(SIMULATOR_WITH_CHANNELS.format(channels="、".join(live)))
    bound = config.delivery.shutdown_seconds
    # Callbacks in flight at a stop get the same bound as the posts in flight.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=bound)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise CliError(
            f"无法监听 {host}:{port}（{exc.strerror}）。端口可能已被占用，请用 --port 指定其他端口。"
        ) from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    announce(f"http://{host}:{port}")
    try:
        await stop.wait()
    finally:
        print(STOPPING.format(seconds=bound), file=sys.stderr, flush=True)
        if watchdog is not None:
            watchdog.arm(bound + HARD_EXIT_MARGIN)
        try:
            # The app stops taking work at once, lets posts in flight finish within the bound and
            # releases the claims it did not use; this only guards the stop itself.
            async with asyncio.timeout(bound + CLEANUP_MARGIN):
                await runner.cleanup()
        except TimeoutError:
            log.error("the stop overran its bound of %g s; exiting anyway", bound)


def cmd_serve(args: argparse.Namespace) -> int:
    if args.speed is not None:
        raise CliError("--speed 只用于演练（dutybot demo --speed N）；正式服务必须按真实时间运行。")
    config = _load(Path(args.config), args.database)
    host = args.host or config.server.host
    port = args.port or config.server.port
    announce = lambda url: print(f"dutybot 已启动：{url}（Ctrl-C 停止）", flush=True)  # noqa: E731
    watchdog = StopWatchdog()
    try:
        asyncio.run(_serve(config, host, port, announce, os.environ, allow_simulator=args.allow_simulator,
                           watchdog=watchdog))
    finally:
        watchdog.disarm()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    path = Path(args.config) if args.config else _example_config()
    config = _load(path, args.database or DEMO_DATABASE)
    host = args.host or "127.0.0.1"
    port = args.port or 8080
    if args.speed is not None and not 1 <= args.speed <= 3600:
        raise CliError("--speed 应在 1 到 3600 之间，例如 60 表示每分钟推进一小时。")
    clock: Clock = ScaledClock(args.speed) if args.speed and args.speed > 1 else SystemClock()

    def announce(url: str) -> None:
        print(f"舆情值班助手演示已启动（配置：{path}，数据库：{safe_url(config.database.url)}）", flush=True)
        if isinstance(clock, ScaledClock):
            print(f"演练模式：时间按 {clock.speed:g} 倍速推进（模拟器页面显示模拟时间）。", flush=True)
        print(f"在浏览器打开模拟群聊：{url}/sim", flush=True)
        print("按 Ctrl-C 停止；再次运行 `dutybot demo` 会保留已有数据。", flush=True)

    # The demo never talks to real platforms, whatever secrets the shell happens to hold.
    imported = asyncio.run(ensure_demo_roster(config))  # the example roster, on the first start only
    if imported:
        print(f"已导入示例值班表：{imported}", flush=True)
    watchdog = StopWatchdog()
    try:
        asyncio.run(_serve(config, host, port, announce, environ={}, simulator=True, clock=clock, watchdog=watchdog))
    finally:
        watchdog.disarm()
    return 0


# -- check-config -----------------------------------------------------------------------------


def cmd_check_config(args: argparse.Namespace) -> int:
    config, problems = read_config(Path(args.file))
    errors = [p for p in problems if not p.warning]
    for problem in problems:
        print(problem, file=sys.stderr if not problem.warning else sys.stdout)
    if config is None or errors:
        print(f"{len(errors)} error(s) in {args.file}", file=sys.stderr)
        return 1
    print(f"{args.file}: OK — {len(config.units)} units, {len(config.people)} people, "
          f"{len(config.chats)} chats" + (f", {len(problems)} warning(s)" if problems else ""))
    return 0


# -- db -------------------------------------------------------------------------------------------


async def _upgrade(url: str) -> None:
    db = Database(url)
    try:
        await db.upgrade()
    finally:
        await db.dispose()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    url = _database_url(args)
    asyncio.run(_upgrade(url))
    print(f"数据库已升级到最新结构：{safe_url(url)}")
    return 0


# -- doctor and send-test ---------------------------------------------------------------------


async def _doctor(config: Config) -> tuple[list[Check], list[str]]:
    """Checks of every channel and of the database, plus the last delivery outcomes."""
    runtime = Runtime.build(config, SystemClock())
    checks: list[Check] = []
    try:
        channels, off = build_channels(runtime, os.environ)
    except ChannelStartError as exc:
        return [Check(False, str(exc))], []
    checks += [Check(True, line) for line in off]
    for channel in channels:
        checks += channel.checks()
    outcomes: list[str] = []
    checks.append(_spool_check(runtime))
    try:
        if not await runtime.db.ping():
            checks.append(Check(False, f"数据库无法连接：{safe_url(config.database.url)}"))
            return checks, outcomes
        checks.append(Check(True, f"数据库可连接：{safe_url(config.database.url)}"))
        async with runtime.db.read() as session:
            rows = await channel_status.all_rows(session)
        for row in rows:
            outcomes.append(_outcome_line(row, config.tz))
            if row.config_error:
                checks.append(
                    Check(False, f"通道 {row.channel} 向群 {row.chat_id} 发送时出现配置错误：{row.last_error}")
                )
    except Exception as exc:  # a missing table means the schema was never created
        checks.append(Check(False, f"读取投递记录失败（{type(exc).__name__}），请先运行 `dutybot db upgrade`。"))
    finally:
        await runtime.db.dispose()
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
    path = Path(args.config) if args.config else Path("config.toml")
    config = _load(path, args.database)
    checks, outcomes = asyncio.run(_doctor(config))
    for check in checks:
        print(("✓ " if check.ok else "✗ ") + check.text)
    if outcomes:
        print("最近投递：")
        for line in outcomes:
            print(f"  {line}")
    failed = [c for c in checks if not c.ok]
    print(f"检查完成：{len(failed)} 项有问题。" if failed else "检查完成：全部正常。")
    return 1 if failed else 0


async def _send_test(config: Config, chat_id: str) -> DeliveryResult:
    runtime = Runtime.build(config, SystemClock())
    channels, _ = build_channels(runtime, os.environ)
    senders = {chat: sender for channel in channels for chat, sender in channel.senders().items()}
    chat = runtime.directory.chats.get(chat_id)
    if chat is None:
        raise CliError(f"配置中没有群聊“{chat_id}”。可用的群聊：{'、'.join(runtime.directory.chats)}。")
    sender = senders.get(chat_id)
    if sender is None:
        raise CliError(
            f"群聊“{chat_id}”没有已启用的通道：请检查 [[channels]] 的 chats 和相应环境变量（dutybot doctor）。"
        )
    async with runtime.db.read() as session:
        on_duty = await runtime.duty.on_duty(session, chat, runtime.clock.now())
    mentions = on_duty.officers[:1]
    now = runtime.clock.now().astimezone(config.tz)
    text = SEND_TEST_TEXT.format(time=f"{now:%Y-%m-%d %H:%M}")
    await runtime.open_http()
    try:
        return await sender.send(chat, OutboundMessage(chat_id=chat_id, text=text, mentions=mentions))
    finally:
        await runtime.close_http()
        await runtime.db.dispose()


SEND_TEST_TEXT = "【测试】舆情值班助手连通性测试（{time}）。收到本消息并看到 @提醒，说明本群配置正确，无需回复。"


def cmd_send_test(args: argparse.Namespace) -> int:
    path = Path(args.config) if args.config else Path("config.toml")
    config = _load(path, None)
    try:
        result = asyncio.run(_send_test(config, args.chat))
    except ChannelStartError as exc:
        raise CliError(str(exc)) from exc
    if result.ok:
        print(f"发送成功：{result.detail or 'errcode 0'}")
        return 0
    kind = "配置错误" if result.config_error else ("暂时失败，可稍后重试" if result.retryable else "失败")
    print(f"发送失败（{kind}）：{result.detail}", file=sys.stderr)
    return 1


# -- audit export ---------------------------------------------------------------------------------

AUDIT_COLUMNS = ["id", "at", "item", "actor", "actor_name", "chat", "action", "detail", "before", "after"]


def _require_existing_sqlite(url: str) -> None:
    """Reading must not create an empty SQLite file at a mistyped path."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database and not Path(parsed.database).exists():
        raise CliError(f"数据库文件不存在：{parsed.database}。请检查 --database 或配置中的路径。")


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CliError(f"日期“{text}”格式不对，请写成 YYYY-MM-DD，例如 2026-11-01。") from exc


async def _export(url: str, since: datetime, fmt: str, out: TextIO, names: dict[str, str],
                  tz: ZoneInfo, progress: bool) -> int:
    db = Database(url)
    count = 0
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(AUDIT_COLUMNS)
    try:
        async with db.read() as session:
            async for event, number in audit.stream_since(session, since):
                row = {
                    "id": event.id, "at": event.at.astimezone(tz).isoformat(),
                    "item": f"#{number}" if number is not None else "", "actor": event.actor,
                    "actor_name": names.get(event.actor, ""), "chat": event.chat_id or "",
                    "action": event.action, "detail": event.detail, "before": event.before, "after": event.after,
                }
                if writer is not None:
                    writer.writerow([json.dumps(row[c], ensure_ascii=False) if c in ("before", "after")
                                     else row[c] for c in AUDIT_COLUMNS])
                else:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
                if progress and count % 1000 == 0:
                    print(f"\r已导出 {count} 条……", end="", file=sys.stderr, flush=True)
    finally:
        await db.dispose()
    return count


def cmd_audit_export(args: argparse.Namespace) -> int:
    config = _config_for_db(args)
    url = args.database or (config.database.url if config else None)
    if url is None:
        raise CliError("请用 --config FILE 或 --database URL 指明数据库。")
    tz = config.tz if config else ZoneInfo("Asia/Shanghai")
    names = {p.id: p.name for p in config.people} if config else {}
    since = datetime.combine(_parse_date(args.since), datetime.min.time(), tzinfo=tz)
    _require_existing_sqlite(url)
    out: TextIO
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        count = asyncio.run(_export(url, since, args.format, out, names, tz, progress=bool(args.output)))
    except BrokenPipeError:
        # The reader (e.g. `| head`) stopped early: that is not an error of ours.
        sys.stderr.close()
        return 0
    except OperationalError as exc:
        raise CliError(
            f"无法读取审计记录（{exc.orig}）。数据库结构可能未初始化，请先运行 `dutybot db upgrade`。"
        ) from exc
    finally:
        if args.output:
            out.close()
    print(f"\r共导出 {count} 条审计记录（自 {args.since} 起）。", file=sys.stderr)
    return 0


# -- parser -----------------------------------------------------------------------------------------


def _add_server_options(parser: argparse.ArgumentParser, *, demo: bool) -> None:
    where = "默认 127.0.0.1:8080" if demo else "默认取配置 [server]"
    parser.add_argument("--host", help=f"监听地址（{where}）")
    parser.add_argument("--port", type=int, help=f"监听端口（{where}）")
    parser.add_argument(
        "--database",
        help="数据库 URL（默认 sqlite+aiosqlite:///var/demo.db）" if demo else "数据库 URL，覆盖配置 [database].url",
    )


def _add_db_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="配置文件（默认当前目录的 config.toml）")
    parser.add_argument("--database", help="数据库 URL，覆盖配置文件")


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"未知的日志级别 {value!r}，可选 {'、'.join(LOG_LEVELS)}")
    return level


def _default_log_format() -> str:
    wanted = os.environ.get("DUTYBOT_LOG_FORMAT", "text").strip().lower()
    return wanted if wanted in logs.FORMATS else "text"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dutybot", description="舆情值班助手 dutybot")
    parser.add_argument("--log-level", default=os.environ.get("DUTYBOT_LOG_LEVEL", "INFO"), type=_log_level,
                        help="日志级别：DEBUG、INFO、WARNING（默认 INFO，或环境变量 DUTYBOT_LOG_LEVEL）")
    parser.add_argument("--log-format", choices=logs.FORMATS, default=_default_log_format(),
                        help="日志格式：text（默认）或 json（每行一个 JSON 对象，含线索编号 item 和幂等键 key；"
                             "也可用环境变量 DUTYBOT_LOG_FORMAT）")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="用示例配置和本地 SQLite 启动演示（含浏览器模拟群聊）")
    demo.add_argument("--config", help="配置文件（默认 config.example.toml）")
    demo.add_argument("--speed", type=float, help="演练模式：时间按 N 倍速推进（如 60：每分钟一小时）")
    _add_server_options(demo, demo=True)
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="按配置文件启动服务")
    serve.add_argument("--config", required=True, help="配置文件")
    serve.add_argument("--speed", type=float, help=argparse.SUPPRESS)  # refused with a clear message
    serve.add_argument("--allow-simulator", action="store_true",
                       help="允许本地模拟通道与平台通道同时开启（模拟通道让本机任何人以任何人员身份发言，仅供排查）")
    _add_server_options(serve, demo=False)
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-config", help="检查配置文件，列出全部问题")
    check.add_argument("file")
    check.set_defaults(func=cmd_check_config)

    db = sub.add_parser("db", help="数据库维护")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_sub.add_parser("upgrade", help="把数据库结构升级到最新版本")
    _add_db_options(upgrade)
    upgrade.set_defaults(func=cmd_db_upgrade)

    doctor = sub.add_parser("doctor", help="检查各通道的密钥、格式、数据库和最近投递结果")
    _add_db_options(doctor)
    doctor.set_defaults(func=cmd_doctor)

    send_test = sub.add_parser("send-test", help="向指定群发送一条带 @ 的测试消息，并显示平台的回答")
    send_test.add_argument("--chat", required=True, help="群聊编号（配置中的 chats[].id）")
    send_test.add_argument("--config", help="配置文件（默认当前目录的 config.toml）")
    send_test.set_defaults(func=cmd_send_test)

    audit_parser = sub.add_parser("audit", help="审计记录")
    audit_sub = audit_parser.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    export = audit_sub.add_parser("export", help="导出审计记录")
    export.add_argument("--since", required=True, help="起始日期 YYYY-MM-DD（按配置时区）")
    export.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    export.add_argument("--output", "-o", help="输出文件（默认标准输出）")
    _add_db_options(export)
    export.set_defaults(func=cmd_audit_export)
    add_roster_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    try:
        result: int = args.func(args)
    except CliError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result




if __name__ == "__main__":
    sys.exit(main())
