"""Read-only index over the configured org structure: units, people, roles, chats.

Built once from the validated Config; handlers ask it "who is the 分管领导 of X" or "which unit
does this text name" without walking lists themselves.
"""

from __future__ import annotations

import difflib
from collections import defaultdict

from domain.config import ChatConfig, Config, PersonConfig, UnitConfig
from domain.vocab import Platform, Role


class Directory:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.units = {u.id: u for u in config.units}
        self.people = {p.id: p for p in config.people}
        self.chats = {c.id: c for c in config.chats}
        self._by_role: dict[tuple[Role, str | None], list[PersonConfig]] = defaultdict(list)
        for person in config.people:
            for assignment in person.roles:
                self._by_role[(assignment.role, assignment.unit)].append(person)
        self._chat_by_platform = {
            (c.platform, c.platform_chat_id): c for c in config.chats if c.platform_chat_id is not None
        }
        self._user_index: dict[tuple[Platform, str], PersonConfig] = {}
        for person in config.people:
            if person.wecom_userid:
                self._user_index[(Platform.WECOM, person.wecom_userid)] = person
            if person.dingtalk_userid:
                self._user_index[(Platform.DINGTALK, person.dingtalk_userid)] = person

    # -- people and roles -------------------------------------------------------------------

    def people_with(self, role: Role, unit: str | None = None) -> list[PersonConfig]:
        return list(self._by_role.get((role, unit), []))

    def ancestors(self, unit_id: str) -> list[str]:
        """The unit and the units above it, nearest first (the config check forbids cycles)."""
        chain: list[str] = []
        current: str | None = unit_id
        while current is not None and current in self.units and current not in chain:
            chain.append(current)
            current = self.units[current].parent
        return chain

    def responsible(self, role: Role, unit_id: str) -> list[PersonConfig]:
        """Holders of a unit role, looked up the tree: a community without a 分管领导 of its own
        answers to its town's (属地管理)."""
        for unit in self.ancestors(unit_id):
            people = self.people_with(role, unit)
            if people:
                return people
        return []

    def has_role(self, person_id: str, role: Role, unit: str | None = None) -> bool:
        return any(p.id == person_id for p in self._by_role.get((role, unit), []))

    def unit_roles(self, person_id: str) -> list[tuple[Role, str]]:
        person = self.people.get(person_id)
        if person is None:
            return []
        return [(a.role, a.unit) for a in person.roles if a.unit is not None]

    def person_by_platform_user(self, platform: Platform, user_id: str) -> PersonConfig | None:
        return self._user_index.get((platform, user_id))

    # -- chats --------------------------------------------------------------------------------

    def chat_by_platform_id(self, platform: Platform, platform_chat_id: str) -> ChatConfig | None:
        return self._chat_by_platform.get((platform, platform_chat_id))

    def coordinator_chats(self) -> list[ChatConfig]:
        return [c for c in self.config.chats if c.coordinators]

    def admin_chats(self) -> list[ChatConfig]:
        return [c for c in self.config.chats if c.admins]

    # -- units --------------------------------------------------------------------------------

    def unit_name(self, unit_id: str | None) -> str:
        if unit_id is None:
            return "未指定"
        unit = self.units.get(unit_id)
        return unit.name if unit else unit_id

    def find_unit(self, text: str) -> UnitConfig | None:
        """Exact match on id, name or alias; then a unique name containing the text (e.g. 城关镇 → 城关镇人民政府)."""
        wanted = text.strip()
        for unit in self.config.units:
            if wanted in (unit.id, unit.name, *unit.aliases):
                return unit
        partial = [u for u in self.config.units if wanted and (wanted in u.name or u.name in wanted)]
        return partial[0] if len(partial) == 1 else None

    def similar_units(self, text: str, limit: int = 3) -> list[UnitConfig]:
        names = {u.name: u for u in self.config.units}
        for unit in self.config.units:
            for alias in unit.aliases:
                names.setdefault(alias, unit)
        close = difflib.get_close_matches(text.strip(), list(names), n=limit * 2, cutoff=0.3)
        result: list[UnitConfig] = []
        for name in close:
            if names[name] not in result:
                result.append(names[name])
        return result[:limit]

    def suggest_unit(self, text: str) -> UnitConfig | None:
        """The unit named most specifically in the text: the longest matching name, alias or keyword
        wins (东风小区 beats 城关), ties go to the unit with more matching text."""
        best: tuple[tuple[int, int], UnitConfig] | None = None
        for unit in self.config.units:
            hits = [len(word) for word in (unit.name, *unit.aliases, *unit.keywords) if word and word in text]
            if not hits:
                continue
            score = (max(hits), sum(hits))
            if best is None or score > best[0]:
                best = (score, unit)
        return best[1] if best else None
