"""The `dutybot` command line: demo, serve, check-config, db upgrade, doctor, send-test, audit export.

Every command finds its config and database the same way (bot/cli_locate.py) and says which it
used; doctor and send-test live in bot/cli_doctor.py, audit export in bot/cli_audit.py, the
Chinese argparse in bot/cli_parser.py, the roster commands in bot/roster_cli.py, the intake API's
tokens in bot/cli_api.py.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from aiohttp import web

from bot import logs
from bot.app import LIVE_CHANNELS, SIMULATOR, create_app
from bot.channels.base import ChannelStartError, Check
from bot.cli_api import add_api_commands
from bot.cli_audit import cmd_audit_export
from bot.cli_doctor import cmd_doctor, cmd_send_test, doctor_checks
from bot.cli_locate import (
    DEMO_DATABASE,
    CliError,
    Located,
    add_location_options,
    checked_url,
    example_config,
    find_config,
    load,
    locate,
    safe_url,
)
from bot.cli_parser import ArgumentParser
from bot.cli_report import add_report_commands
from bot.clock import Clock, ScaledClock, SystemClock
from bot.roster_cli import add_roster_commands, ensure_demo_roster
from domain.config import Config, read_config
from store.db import Database, schema_state

__all__ = ["DEMO_DATABASE", "SIMULATOR_WITH_CHANNELS", "CliError", "build_parser", "main", "safe_url"]

log = logging.getLogger("dutybot")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
NO_SERVE_CONFIG = ("找不到配置文件：请用 --config 文件 指明（或设置环境变量 DUTYBOT_CONFIG，或放在当前目录的 "
                   "config.toml）。演示请运行 dutybot demo。")


async def _doctor(config: Config) -> tuple[list[Check], list[str]]:
    """doctor's checks with this process's environment."""
    return await doctor_checks(config, os.environ)


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
    # What start-up made (modules, the configuration, mappers, the app) lives as long as the
    # process: out of the collector's sight, a full collection scans only what requests made. Left
    # in, each full collection walked it all and held every request in flight for tens of ms.
    gc.freeze()
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
    # Never the demo's config: a production server started on the fictional county by accident.
    located = locate(args.config, args.database, os.environ, demo=False)
    if located.config is None:
        raise CliError(NO_SERVE_CONFIG)
    config = located.config
    located.announce()
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
    path = Path(args.config) if args.config else example_config()
    # The demo never talks to real platforms nor other systems, whatever secrets the shell holds:
    # without channels and webhooks it has none to build, and nothing to warn about.
    config = load(path, checked_url(args.database) if args.database else DEMO_DATABASE)
    config = config.model_copy(update={"channels": [], "webhooks": []})
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

CHECK_FAILED = "{file} 有 {count} 处错误，请修改后重新检查。"
CHECK_OK = "{file}：检查通过（{units} 个单位、{people} 名人员、{chats} 个群聊{warnings}）。"


def cmd_check_config(args: argparse.Namespace) -> int:
    path, note, _ = find_config(args.file, os.environ)
    if path is None:
        raise CliError("找不到配置文件：请写明要检查的文件，例如 dutybot check-config config.toml。")
    Located(None, path, note, None, "").announce(with_database=False)
    config, problems = read_config(path)
    errors = [p for p in problems if not p.warning]
    for problem in problems:
        print(problem, file=sys.stderr if not problem.warning else sys.stdout)
    if config is None or errors:
        print(CHECK_FAILED.format(file=path, count=len(errors)), file=sys.stderr)
        return 1
    warnings = f"；{len(problems)} 条警告" if problems else ""
    print(CHECK_OK.format(file=path, units=len(config.units), people=len(config.people), chats=len(config.chats),
                          warnings=warnings))
    return 0


# -- db -------------------------------------------------------------------------------------------

UPGRADED = "数据库已升级到最新结构（版本 {revision}）：{url}"
NEWER = "数据库结构（版本 {revision}）比本程序新：请先升级 dutybot，再使用此数据库。"


async def _upgrade(url: str) -> str:
    before = await schema_state(url)
    if before.found and not before.known:
        raise CliError(NEWER.format(revision="、".join(before.revisions)))
    db = Database(url)
    try:
        await db.upgrade()
    finally:
        await db.dispose()
    return "、".join(before.heads)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    located = locate(args.config, args.database, os.environ)
    url = located.url()
    located.announce()
    revision = asyncio.run(_upgrade(url))
    print(UPGRADED.format(revision=revision, url=safe_url(url)))
    return 0


# -- parser -----------------------------------------------------------------------------------------


def _add_server_options(parser: argparse.ArgumentParser, *, demo: bool) -> None:
    where = "默认 127.0.0.1:8080" if demo else "默认取配置 [server]"
    parser.add_argument("--host", help=f"监听地址（{where}）")
    parser.add_argument("--port", type=int, help=f"监听端口（{where}）")
    parser.add_argument(
        "--database",
        help=f"数据库 URL（默认 {DEMO_DATABASE}）" if demo
        else "数据库 URL（默认取环境变量 DUTYBOT_DATABASE_URL 或配置 [database].url）",
    )


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"未知的日志级别 {value!r}，可选 {'、'.join(LOG_LEVELS)}")
    return level


def _default_log_format() -> str:
    wanted = os.environ.get("DUTYBOT_LOG_FORMAT", "text").strip().lower()
    return wanted if wanted in logs.FORMATS else "text"


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="dutybot", description="舆情值班助手 dutybot")
    parser.add_argument("--log-level", default=os.environ.get("DUTYBOT_LOG_LEVEL", "INFO"), type=_log_level,
                        help="日志级别：DEBUG、INFO、WARNING（默认 INFO，或环境变量 DUTYBOT_LOG_LEVEL）")
    parser.add_argument("--log-format", choices=logs.FORMATS, default=_default_log_format(),
                        help="日志格式：text（默认）或 json（每行一个 JSON 对象，含线索编号 item 和幂等键 key；"
                             "也可用环境变量 DUTYBOT_LOG_FORMAT）")
    sub = parser.add_subparsers(dest="command", required=True, metavar="命令")

    demo = sub.add_parser("demo", help="用示例配置和本地 SQLite 启动演示（含浏览器模拟群聊）")
    demo.add_argument("--config", help="配置文件（默认 config.example.toml）")
    demo.add_argument("--speed", type=float, help="演练模式：时间按 N 倍速推进（如 60：每分钟一小时）")
    _add_server_options(demo, demo=True)
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="按配置文件启动服务")
    serve.add_argument("--config", help="配置文件（默认：环境变量 DUTYBOT_CONFIG 或当前目录的 config.toml）")
    serve.add_argument("--speed", type=float, help=argparse.SUPPRESS)  # refused with a clear message
    serve.add_argument("--allow-simulator", action="store_true",
                       help="允许本地模拟通道与平台通道同时开启（模拟通道让本机任何人以任何人员身份发言，仅供排查）")
    _add_server_options(serve, demo=False)
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-config", help="检查配置文件，一次列出全部问题")
    check.add_argument("file", nargs="?", help="配置文件（默认与其他命令相同：DUTYBOT_CONFIG、config.toml 或示例配置）")
    check.set_defaults(func=cmd_check_config)

    db = sub.add_parser("db", help="数据库维护")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="操作")
    upgrade = db_sub.add_parser("upgrade", help="把数据库结构升级到最新版本（数据库不存在时新建）")
    add_location_options(upgrade)
    upgrade.set_defaults(func=cmd_db_upgrade)

    doctor = sub.add_parser("doctor", help="检查各通道的密钥、格式、数据库和最近投递结果")
    add_location_options(doctor)
    doctor.set_defaults(func=cmd_doctor)

    send_test = sub.add_parser("send-test", help="向指定群发送一条带 @ 的测试消息，并显示平台的回答")
    send_test.add_argument("--chat", required=True, help="群聊编号（配置中的 chats[].id）")
    add_location_options(send_test)
    send_test.set_defaults(func=cmd_send_test)

    audit_parser = sub.add_parser("audit", help="审计记录")
    audit_sub = audit_parser.add_subparsers(dest="audit_command", required=True, metavar="操作")
    export = audit_sub.add_parser("export", help="导出审计记录")
    export.add_argument("--since", required=True, help="起始日期 YYYY-MM-DD（按配置时区）")
    export.add_argument("--format", choices=["csv", "jsonl", "xlsx"],
                        help="输出格式（默认按输出文件的扩展名，否则 csv）")
    export.add_argument("--output", "-o", help="输出文件（默认标准输出；xlsx 须指定文件）")
    export.add_argument("--unit", metavar="单位", help="只导出该单位的记录：单位编号、名称或简称")
    export.add_argument("--item", metavar="编号", help="只导出一条线索的记录，如 12、#12、12号")
    add_location_options(export)
    export.set_defaults(func=cmd_audit_export)
    add_roster_commands(sub)
    add_api_commands(sub)
    add_report_commands(sub)
    return parser


def _quiet_libraries(level: str) -> None:
    """Alembic announces every migration step at INFO: noise on each start; shown under DEBUG only."""
    logging.getLogger("alembic").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    _quiet_libraries(args.log_level)
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
