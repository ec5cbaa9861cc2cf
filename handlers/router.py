"""Routing: a parser turns the text after a verb into a typed command (or a usage error); the
handler acts on the typed command. Each feature module owns one Router; the app includes them
explicitly, in order. A text with no verb is first offered to the dialogues (handlers/dialogues.py:
a bare answer to the question the sender was asked); then the fallbacks (texts read without a
verb, like "#12 重大" or "舆情：…") are tried in inclusion order; when none takes the text, the
"unrecognised" handlers are, with the Dispatcher's did-you-mean suggestion.

A message may hold several commands (handlers/segments.py says where each begins): each is run
as if sent alone, in order, in the message's one transaction, and the replies are concatenated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from domain.messages import Reply
from handlers.context import Context, Outcome
from handlers.dialogues import Dialogues
from handlers.parsing import split_verb
from handlers.segments import MAX_COMMANDS, Segment, partial_notice, split_commands
from handlers.typos import Suggestion, Verb, suggest

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
# The last word on a text nothing understood; the second argument is the corrected text when the
# text is one character off a command ("签手 #5" → "签收 #5"), else None.
Unrecognised = Callable[[Context, Suggestion | None], Awaitable[Outcome | None]]


class Router:
    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: list[Route[Any]] = []
        self.fallbacks: list[Fallback] = []
        self.unrecognised_handlers: list[Unrecognised] = []

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

    def unrecognised(self, handle: Unrecognised) -> Unrecognised:
        self.unrecognised_handlers.append(handle)
        return handle


class Dispatcher:
    """All included routers; finds the route for a text and runs it."""

    def __init__(self, *routers: Router, dialogues: Dialogues | None = None) -> None:
        self.routers = list(routers)
        self.dialogues = dialogues
        self._by_verb: dict[str, Route[Any]] = {}
        for router in routers:
            for route in router.routes:
                for verb in route.verbs:
                    if verb in self._by_verb:
                        raise ValueError(f"verb {verb!r} registered twice")
                    self._by_verb[verb] = route

    def summaries(self) -> list[str]:
        return [route.summary for router in self.routers for route in router.routes]

    def suggest(self, text: str) -> Suggestion | None:
        """The corrected text when `text` starts with a verb one character off (handlers/typos.py)."""
        verbs = {verb: Verb(id(route), self._accepts(route)) for verb, route in self._by_verb.items()}
        found = suggest(text, verbs)
        if found is not None and found.bare:
            parsed = self._by_verb[found.text].parse("")
            found = replace(found, usage=parsed.hint if isinstance(parsed, Usage) else "")
        return found

    @staticmethod
    def _accepts(route: Route[Any]) -> Callable[[str], bool]:
        return lambda rest: not isinstance(route.parse(rest), Usage)

    async def run(self, ctx: Context) -> Outcome:
        """Run every command of the message in order; see handlers/segments.py for the rule."""
        segments = split_commands(ctx.text, self._by_verb)
        if len(segments) == 1:
            return await self.run_one(ctx)
        done = self._runnable(segments)
        replies: list[Reply] = []
        for segment in done:
            # Each command sees its own text, and who is on duty afresh (a 换班 above may change it).
            outcome = await self.run_one(replace(ctx, text=segment.text, _on_duty=None))
            replies += outcome.replies
        if len(done) < len(segments):
            replies.append(Reply(partial_notice(len(done), segments[len(done) :])))
        return Outcome(tuple(replies))

    def _runnable(self, segments: list[Segment]) -> list[Segment]:
        """The leading commands that are surely commands: all, unless a later line that starts
        with a verb (but no item number) does not parse — then it may be text of the command
        above, and it and what follows are not run."""
        for index, segment in enumerate(segments):
            if index == MAX_COMMANDS or (index > 0 and not segment.certain and not self._parses(segment.text)):
                return segments[:index]
        return segments

    def _parses(self, text: str) -> bool:
        matched = split_verb(text, list(self._by_verb))
        return matched is not None and not isinstance(self._by_verb[matched[0]].parse(matched[1]), Usage)

    async def run_one(self, ctx: Context) -> Outcome:
        matched = split_verb(ctx.text, list(self._by_verb))
        if matched is not None:
            verb, rest = matched
            route = self._by_verb[verb]
            command = route.parse(rest)
            if isinstance(command, Usage):
                return Outcome.say(command.hint)
            return await route.handle(ctx, command)
        if self.dialogues is not None:
            answered = await self.dialogues.resolve(ctx)
            if answered is not None:
                return answered
        for router in self.routers:
            for fallback in router.fallbacks:
                outcome = await fallback(ctx)
                if outcome is not None:
                    return outcome
        suggestion = self.suggest(ctx.text)
        for router in self.routers:
            for handle in router.unrecognised_handlers:
                outcome = await handle(ctx, suggestion)
                if outcome is not None:
                    return outcome
        return Outcome()
