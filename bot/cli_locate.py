"""Which configuration and database a command works on, found the same way by every command.

Explicit flags first (--config, --database), then the environment (DUTYBOT_CONFIG,
DUTYBOT_DATABASE_URL), then `config.toml` in the current folder, and last — in a folder where
`dutybot demo` has run (var/demo.db exists) — the demo's own config and database, picked as the
demo picks them. Each command says on stderr what it used, so an operator never reads or changes
the wrong database without being told. A database is only read when it exists and its schema is
this code's: nothing here creates an empty one.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from domain.config import Config, ConfigError, check_database_url, load_config
from store.db import SchemaState, is_sqlite, schema_state

DEMO_DATABASE = "sqlite+aiosqlite:///var/demo.db"
BUNDLED_EXAMPLE = Path(__file__).resolve().parent / "examples" / "config.example.toml"
CONFIG_ENV = "DUTYBOT_CONFIG"
DATABASE_ENV = "DUTYBOT_DATABASE_URL"
LOCAL_CONFIG = Path("config.toml")

DEMO_CONFIG_NOTE = "示例配置"
DEMO_DATABASE_NOTE = "演示数据库"
FROM_CONFIG_NOTE = "配置 [database].url"
USING = "使用配置：{config}；数据库：{database}"
USING_CONFIG = "使用配置：{config}"
NO_CONFIG = ("找不到配置文件：当前目录没有 config.toml，也没有演示数据库 var/demo.db。请用 --config 文件 指明配置"
             "（或设置环境变量 DUTYBOT_CONFIG）；先体验请运行 dutybot demo。")
NO_DATABASE = ("找不到数据库：请用 --database URL 或 --config 文件 指明（或设置环境变量 DUTYBOT_DATABASE_URL）；"
               "先体验请运行 dutybot demo。")
MISSING_FILE = "找不到配置文件 {path}{note}。"
BAD_CONFIG = "配置文件 {path} 有误：\n{lines}\n请修改后用 `dutybot check-config {path}` 复查。"
BAD_URL = "数据库 URL {url}{note} 不可用：{reason}。"
DB_MISSING = ("数据库文件不存在：{path}。新建数据库请运行 dutybot db upgrade --database {url}；"
              "体验演示请运行 dutybot demo。")
DB_BEHIND = "数据库结构需要升级：请运行 dutybot db upgrade --database {url}（当前版本 {current}，最新版本 {head}）。"
DB_NEWER = "数据库结构（版本 {current}）比本程序新：请先升级 dutybot，再使用此数据库。"
DB_UNREADABLE = "无法读取数据库 {url}（{error}）。"


class CliError(Exception):
    """An error the operator can fix; printed without a traceback."""


def safe_url(url: str) -> str:
    """A database URL fit for the screen and logs: the password is masked."""
    return make_url(url).render_as_string(hide_password=True)


def example_config() -> Path:
    """The demo's config: the example in the current folder, else the one shipped in the package."""
    local = Path("config.example.toml")
    return local if local.exists() else BUNDLED_EXAMPLE


def shown_database(url: str) -> str:
    """An SQLite database as its file (as the operator sees it on disk), any other as its URL."""
    return str(make_url(url).database) if is_sqlite(url) else safe_url(url)


def _note(text: str) -> str:
    return f"（{text}）" if text else ""


@dataclass(frozen=True)
class Located:
    """What a command works on, and where each came from (for the line it prints)."""

    config: Config | None
    config_path: Path | None
    config_note: str
    database: str | None
    database_note: str

    def line(self, *, with_database: bool = True) -> str:
        config = f"{self.config_path}{_note(self.config_note)}" if self.config_path else "无"
        if not with_database:
            return USING_CONFIG.format(config=config)
        database = f"{shown_database(self.database)}{_note(self.database_note)}" if self.database else "无"
        return USING.format(config=config, database=database)

    def announce(self, *, with_database: bool = True) -> None:
        print(self.line(with_database=with_database), file=sys.stderr, flush=True)

    def url(self) -> str:
        if self.database is None:
            raise CliError(NO_DATABASE)
        return self.database

    def require_config(self) -> Config:
        if self.config is None:
            raise CliError(NO_CONFIG)
        return self.config


def checked_url(url: str, note: str = "") -> str:
    try:
        return check_database_url(url)
    except ValueError as exc:
        raise CliError(BAD_URL.format(url=safe_url(url), note=_note(note), reason=exc)) from None


def load(path: Path, database: str | None, note: str = "") -> Config:
    """The config at `path` (refused with every problem listed), on `database` when given."""
    if not path.is_file():
        raise CliError(MISSING_FILE.format(path=path, note=_note(note)))
    try:
        config = load_config(path)
    except ConfigError as exc:
        lines = "\n".join(f"  {p}" for p in exc.problems)
        raise CliError(BAD_CONFIG.format(path=path, lines=lines)) from exc
    return config.with_database(database) if database else config


def find_config(flag: str | None, environ: Mapping[str, str], *, demo: bool = True) -> tuple[Path | None, str, bool]:
    """(path, note, is the demo's) by the order above; (None, "", False) when there is none."""
    if flag:
        return Path(flag), "", False
    if environ.get(CONFIG_ENV, "").strip():
        return Path(environ[CONFIG_ENV].strip()), f"环境变量 {CONFIG_ENV}", False
    if LOCAL_CONFIG.is_file():
        return LOCAL_CONFIG, "", False
    if demo and Path(make_url(DEMO_DATABASE).database or "").is_file():
        return example_config(), DEMO_CONFIG_NOTE, True
    return None, "", False


def locate(config_flag: str | None, database_flag: str | None, environ: Mapping[str, str], *,
           demo: bool = True) -> Located:
    """The config (None when there is none) and the database URL (None when nothing names one)."""
    path, config_note, is_demo = find_config(config_flag, environ, demo=demo)
    database: str | None = None
    database_note = ""
    if database_flag:
        database = checked_url(database_flag)
    elif environ.get(DATABASE_ENV, "").strip():
        database_note = f"环境变量 {DATABASE_ENV}"
        database = checked_url(environ[DATABASE_ENV].strip(), database_note)
    elif is_demo:
        database, database_note = DEMO_DATABASE, DEMO_DATABASE_NOTE
    config = load(path, database, config_note) if path is not None else None
    if database is None and config is not None:
        database, database_note = config.database.url, FROM_CONFIG_NOTE
    return Located(config, path, config_note, database, database_note)


def schema_problem(state: SchemaState, url: str) -> str | None:
    """What keeps a command from using this database as it is, or None when it can."""
    if not state.found:
        return DB_MISSING.format(path=shown_database(url), url=safe_url(url))
    if not state.known:
        return DB_NEWER.format(current="、".join(state.revisions))
    if state.behind:
        return DB_BEHIND.format(url=safe_url(url), current="、".join(state.revisions) or "无",
                                head="、".join(state.heads))
    return None


async def require_current(url: str) -> None:
    """Refuse, with what to do, a database that is missing, unreachable or not at this code's schema."""
    try:
        state = await schema_state(url)
    except Exception as exc:  # unreachable server, wrong password, a file that is not a database
        raise CliError(DB_UNREADABLE.format(url=safe_url(url), error=_reason(exc))) from exc
    problem = schema_problem(state, url)
    if problem is not None:
        raise CliError(problem)


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__


def add_location_options(parser: argparse.ArgumentParser) -> None:
    """--config and --database, as every command that works on a config and a database takes them."""
    parser.add_argument("--config", help="配置文件（默认：环境变量 DUTYBOT_CONFIG、当前目录的 config.toml，"
                                          "或演示目录中的示例配置）")
    parser.add_argument("--database", help="数据库 URL（默认：环境变量 DUTYBOT_DATABASE_URL、配置 [database].url，"
                                            "或演示数据库）")
