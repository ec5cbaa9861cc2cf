"""CPU of one reply POST through aiohttp's client: the floor under every chat command's cost.

A DingTalk app robot cannot answer in the callback's HTTP response (PROTOCOLS.md D: treat as
unsupported), so every command's reply is a second HTTP exchange, made by the bot as a client, to
the `sessionWebhook`. The ceiling scenario makes none. This measures what that exchange alone
costs the bot's process: `bot.channels.dingtalk.post_json` (the function the DingTalk channel
posts with) over one shared `aiohttp.ClientSession` with keep-alive, as `Runtime.http` is, 16 posts
in flight, to the bench's fake platform running as a separate process (pinned to the other core
when there are two). No database, no handler: only the client side of the reply.

Rerun:
    .venv/bin/python -m bench.reply_post            # 20,000 posts
    .venv/bin/python -m bench.reply_post --posts 2000 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bot.channels.dingtalk import post_json

ROOT = Path(__file__).resolve().parents[1]
# A reply as the bot posts it to a sessionWebhook: the grade question of a 上报, with an @.
BODY = json.dumps(
    {"msgtype": "text", "text": {"content": "已登记 #1234（微博 / 民生诉求），牵头单位：西岸街道。请于 10:30 前定级："
                                           "回复 1 重大、2 较大、3 一般。\n@孙丽"},
     "at": {"atUserIds": ["dt_sunli"], "isAtAll": False}},
    ensure_ascii=False,
).encode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_fake(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "bench.servers.fake_platform", "--port", str(port)]
    if (os.cpu_count() or 1) >= 2:
        command = ["taskset", "-c", "1", *command]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _wait_up(http: aiohttp.ClientSession, base: str) -> None:
    for _ in range(100):
        try:
            async with http.get(f"{base}/count") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the fake platform did not start")


async def measure(base: str, posts: int, in_flight: int) -> dict[str, Any]:
    url = f"{base}/robot/sendBySession?session=bench"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10), trust_env=False) as http:
        await _wait_up(http, base)
        remaining = posts
        failures = 0

        async def poster() -> None:
            nonlocal remaining, failures
            while remaining > 0:
                remaining -= 1
                result = await post_json(http, url, BODY, ())
                failures += not result.ok

        await asyncio.gather(*(poster() for _ in range(in_flight)))  # warm-up: connections, caches
        remaining = posts
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(in_flight)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"posts": posts, "in_flight": in_flight, "failures": failures,
            "cpu_us_per_post": round(cpu / posts * 1e6, 1), "posts_per_s": round(posts / wall, 1)}


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--json", help="also write the result as JSON to this file")
    args = parser.parse_args(argv)
    port = _free_port()
    fake = _start_fake(port)
    try:
        result = asyncio.run(measure(f"http://127.0.0.1:{port}", args.posts, args.in_flight))
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    print(f"reply POST (aiohttp client, {args.in_flight} in flight): {result['cpu_us_per_post']} µs of CPU per post, "
          f"{result['posts_per_s']} posts/s, {result['failures']} failed")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if result["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(cli())
