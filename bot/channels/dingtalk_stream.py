"""DingTalk Stream mode: robot messages over the official `dingtalk-stream` SDK's WebSocket protocol.

What comes from the SDK: the frame classes, the callback-handler contract, the routing of a frame
to its handler and the acknowledgement it sends back (`DingTalkStreamClient.route_message`), and
the answers to the gateway's SYSTEM frames (ping, disconnect).

What does not, and why (checked against dingtalk-stream 0.24.3 and the repository HEAD):
- `open_connection()` posts with blocking `requests` and is called synchronously from the
  client's `start()`, i.e. inside the event loop; it also finds the "local IP" by connecting a UDP
  socket to 8.8.8.8. We do that one small POST with aiohttp instead and hand the endpoint and the
  ticket to the WebSocket ourselves. The SDK never receives the client secret, so none of its
  blocking OpenAPI helpers can be used by mistake.
- `start()` swallows `CancelledError` (it sleeps and reconnects), so its task cannot be stopped;
  our loop is cancellable and backs off 1 s → 60 s with jitter.
- The SDK's `ChatbotHandler.reply_text/reply_markdown` post synchronously with `requests`; we
  never call them: replies are queued in the outbox and posted with aiohttp to the message's
  sessionWebhook, exactly as in HTTP callback mode.
- The base URL: the SDK reads DINGTALK_OPENAPI_ENDPOINT from os.environ at import time. We take
  it from the `environ` mapping given to the channel (default https://api.dingtalk.com), so tests
  point a channel at a local fake gateway without touching the process environment.

Frames are handled one at a time, in order, so that "上报 …" followed quickly by "1" is handled in
the order it was sent; each message takes one short database transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus, urlsplit

import aiohttp
from pydantic import ValidationError

from bot.channels.base import ChannelStartError
from bot.channels.dingtalk_payloads import GatewayTicket

log = logging.getLogger(__name__)
# The SDK logs every ping frame as a warning ("unknown message topic"); keep its voice to errors.
_SDK_LOG = logging.getLogger(f"{__name__}.sdk")
_SDK_LOG.setLevel(logging.ERROR)

ROBOT_TOPIC = "/v1.0/im/bot/messages/get"
OPEN_CONNECTION_PATH = "/v1.0/gateway/connections/open"
ENDPOINT_ENV = "DINGTALK_OPENAPI_ENDPOINT"
DEFAULT_ENDPOINT = "https://api.dingtalk.com"
MAX_FRAME = 1024 * 1024
FIRST_DELAY = 1.0
MAX_DELAY = 60.0

NO_SDK = (
    "通道 {channel} 配置为 Stream 模式，但未安装钉钉 Stream SDK（dingtalk-stream）。"
    "请执行 pip install 'dutybot[dingtalk-stream]'，或将该通道的 mode 改为 http。"
)
BAD_ENDPOINT = "环境变量 {env} 应为 http(s) 地址（默认 {default}），当前值无效。"

OnMessage = Callable[[Any], Awaitable[bool]]
"""Handles a robot message's data; False when the message is malformed."""


class StreamError(Exception):
    """The gateway refused or garbled the open-connection handshake (retried with backoff)."""


def load_sdk(channel_id: str) -> ModuleType:
    """The SDK, imported only when a channel uses Stream mode (it is an optional extra)."""
    try:
        sdk = importlib.import_module("dingtalk_stream")
        importlib.import_module("websockets.asyncio.client")
    except ImportError as exc:
        raise ChannelStartError(NO_SDK.format(channel=channel_id)) from exc
    return sdk


def gateway_endpoint(environ: Mapping[str, str]) -> str:
    """The OpenAPI base URL: DINGTALK_OPENAPI_ENDPOINT from the channel's environ, like the SDK."""
    value = environ.get(ENDPOINT_ENV, "").strip().rstrip("/")
    if not value:
        return DEFAULT_ENDPOINT
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ChannelStartError(BAD_ENDPOINT.format(env=ENDPOINT_ENV, default=DEFAULT_ENDPOINT))
    return value


def _make_handler(sdk: ModuleType, on_message: OnMessage) -> Any:
    """A callback handler for the robot topic: the SDK's ChatbotHandler minus its blocking replies."""
    ack = sdk.AckMessage
    base: Any = sdk.CallbackHandler

    class RobotMessageHandler(base):  # type: ignore[misc]  # the SDK has no type hints
        async def process(self, callback: Any) -> tuple[int, str]:
            try:
                accepted = await on_message(callback.data)
            except Exception:
                log.exception("handling a DingTalk stream message failed")
                return ack.STATUS_SYSTEM_EXCEPTION, "error"
            if not accepted:
                return ack.STATUS_BAD_REQUEST, "malformed robot message"
            return ack.STATUS_OK, "OK"

    return RobotMessageHandler()


def _connect_options() -> dict[str, Any]:
    """Options for websockets' asyncio client; proxies off like our aiohttp session (trust_env=False)."""
    from websockets.asyncio.client import connect

    options: dict[str, Any] = {"open_timeout": 10, "max_size": MAX_FRAME}
    if "proxy" in inspect.signature(connect).parameters:  # websockets >= 15
        options["proxy"] = None
    return options


class StreamReceiver:
    """Keeps one Stream connection open in a background task and feeds robot messages to on_message."""

    def __init__(
        self, *, channel_id: str, client_id: str, client_secret: str, endpoint: str, sdk: ModuleType,
        http: Callable[[], aiohttp.ClientSession], on_message: OnMessage,
    ) -> None:
        self.channel_id = channel_id
        self._client_id = client_id
        self._client_secret = client_secret
        self._endpoint = endpoint
        self._http = http
        self._sdk_version = str(getattr(importlib.import_module("dingtalk_stream.version"), "VERSION_STRING", "?"))
        # The SDK gets an empty secret on purpose: see the module docstring.
        self._client = sdk.DingTalkStreamClient(sdk.Credential(client_id, ""), logger=_SDK_LOG)
        self._client.register_callback_handler(ROBOT_TOPIC, _make_handler(sdk, on_message))
        self._task: asyncio.Task[None] | None = None

    @property
    def sdk_version(self) -> str:
        return self._sdk_version

    async def start(self) -> None:
        self._client.pre_start()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"dingtalk-stream:{self.channel_id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        delay = FIRST_DELAY
        while True:
            try:
                endpoint, ticket = await self._open_connection()
                await self._serve(endpoint, ticket)
                # The connection worked and was closed (e.g. the gateway's "disconnect"): reconnect
                # after a short pause; a later failure starts the backoff afresh.
                delay = FIRST_DELAY
            except Exception as exc:  # network, gateway or protocol trouble: reconnect later
                delay = min(delay * 2, MAX_DELAY)
                # Only the type: messages of URL errors would carry the connection ticket.
                log.warning("DingTalk stream %s: connection failed (%s); retrying within %.0f s",
                            self.channel_id, type(exc).__name__, delay)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _open_connection(self) -> tuple[str, str]:
        """POST /v1.0/gateway/connections/open (what the SDK's open_connection sends), without blocking."""
        body = {
            "clientId": self._client_id,
            "clientSecret": self._client_secret,
            "subscriptions": [{"type": "CALLBACK", "topic": ROBOT_TOPIC}],
            "ua": f"dingtalk-sdk-python/v{self._sdk_version}-union",
            "localIp": "",
        }
        url = self._endpoint + OPEN_CONNECTION_PATH
        async with self._http().post(url, json=body, headers={"Accept": "application/json"}) as response:
            if response.status != 200:
                raise StreamError(f"HTTP {response.status}")
            payload = await response.json(content_type=None)
        try:
            answer = GatewayTicket.model_validate(payload)
        except ValidationError:
            raise StreamError("no endpoint/ticket in the answer") from None
        return answer.endpoint, answer.ticket

    async def _serve(self, endpoint: str, ticket: str) -> None:
        from websockets.asyncio.client import connect

        uri = f"{endpoint}{'&' if '?' in endpoint else '?'}ticket={quote_plus(ticket)}"
        async with connect(uri, **_connect_options()) as websocket:
            self._client.websocket = websocket  # route_message sends its acks through this
            log.info("DingTalk stream %s connected", self.channel_id)
            try:
                async for raw in websocket:
                    if await self._route(raw) == self._client.TAG_DISCONNECT:
                        break  # the gateway asked us to reconnect
            finally:
                self._client.websocket = None

    async def _route(self, raw: str | bytes) -> str:
        """One frame through the SDK's router (it acks); a bad frame is logged, not fatal."""
        from websockets.exceptions import WebSocketException

        try:
            frame = json.loads(raw)
        except ValueError:
            log.warning("DingTalk stream %s: a frame that is not JSON was ignored", self.channel_id)
            return ""
        if not isinstance(frame, dict):
            return ""
        try:
            return str(await self._client.route_message(frame))
        except WebSocketException:
            raise  # the socket is gone: reconnect
        except Exception:
            log.exception("DingTalk stream %s: a frame could not be handled", self.channel_id)
            return ""
