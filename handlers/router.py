"""Routing: a parser turns the text after a verb into a typed command (or a usage error); the
handler acts on the typed command. Each feature module owns one Router; the app includes them
explicitly, in order. Fallbacks (no verb matched) are tried in inclusion order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from handlers.context import Context, Outcome
from handlers.parsing import split_verb

T = TypeVar("T")


@dataclass(frozen=True)
class Usage:
    """A parser's answer when the text after the verb does not fit: what to type instead."""

    hint: str


@dataclass(frozen=True)
class Route(Generic[T]):
    verbs: tuple[str, ...]
    parse: Callable[[str], T | Usage]
    handle: Callable[[Context, T], Awaitable[Outcome]]
    summary: str  # one line for 帮助


Fallback = Callable[[Context], Awaitable[Outcome | None]]


class Router:
    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: list[Route[Any]] = []
        self.fallbacks: list[Fallback] = []

    def command(
        self, *verbs: str, parse: Callable[[str], T | Usage], summary: str
    ) -> Callable[[Callable[[Context, T], Awaitable[Outcome]]], Callable[[Context, T], Awaitable[Outcome]]]:
        def register(
            handle: Callable[[Context, T], Awaitable[Outcome]],
        ) -> Callable[[Context, T], Awaitable[Outcome]]:
            self.routes.append(Route(verbs, parse, handle, summary))
            return handle

        return register

    def fallback(self, handle: Fallback) -> Fallback:
        self.fallbacks.append(handle)
        return handle


class Dispatcher:
    """All included routers; finds the route for a text and runs it."""

    def __init__(self, *routers: Router) -> None:
        self.routers = list(routers)
        self._by_verb: dict[str, Route[Any]] = {}
        for router in routers:
            for route in router.routes:
                for verb in route.verbs:
                    if verb in self._by_verb:
                        raise ValueError(f"verb {verb!r} registered twice")
                    self._by_verb[verb] = route

    def summaries(self) -> list[str]:
        return [route.summary for router in self.routers for route in router.routes]

    async def run(self, ctx: Context) -> Outcome:
        matched = split_verb(ctx.text, list(self._by_verb))
        if matched is not None:
            verb, rest = matched
            route = self._by_verb[verb]
            command = route.parse(rest)
            if isinstance(command, Usage):
                return Outcome.say(command.hint)
            return await route.handle(ctx, command)
        for router in self.routers:
            for fallback in router.fallbacks:
                outcome = await fallback(ctx)
                if outcome is not None:
                    return outcome
        return Outcome()
