"""The peer: a minimal nonebot2 bot (FastAPI driver, OneBot v11 adapter), run by the bench.

Configuration comes from environment variables set by bench/scenarios.py (DRIVER=~fastapi+~aiohttp,
HOST, PORT, LOG_LEVEL=WARNING, COMMAND_START, ONEBOT_API_ROOTS pointing at the bench's fake
OneBot HTTP API). Events arrive by HTTP POST on /onebot/v11/http with an X-Self-ID header; the
adapter answers 204 at once and runs the handler in a task, which replies through the OneBot
HTTP API (`send_msg`): OneBot v11's quick operation in the response body is not used by this
adapter in HTTP POST mode.
"""

from pathlib import Path

import nonebot
from nonebot.adapters.onebot.v11 import Adapter

nonebot.init()
nonebot.get_driver().register_adapter(Adapter)
nonebot.load_plugins(str(Path(__file__).resolve().parent / "plugins"))

if __name__ == "__main__":
    nonebot.run(access_log=False)  # as dutybot serve: no access log
