"""The configuration's models, split by subject (runtime sections, the organisation, the policy),
and how a TOML file becomes a validated `Config`. Everything that uses a config model imports it
from here; nothing here imports the runtime (bot/), the business layer (handlers/) or the store."""

from domain.config.base import ID_RE, MOBILE_RE, EnvName, Ident
from domain.config.model import Config, ConfigError, load_config, parse_config, read_config
from domain.config.org import (
    ChannelConfig,
    ChatConfig,
    DingtalkChannelConfig,
    PersonConfig,
    RoleAssignment,
    UnitConfig,
    WecomChannelConfig,
)
from domain.config.policy import (
    ActorRole,
    CategoryRule,
    CoordinatorCopies,
    DayTypeName,
    EscalationPolicy,
    GradePolicy,
    MentionTarget,
    PolicySection,
    QuietHours,
    ResponseFormRule,
    RosterSection,
)
from domain.config.problems import Problem
from domain.config.records import RecordsSection
from domain.config.runtime import (
    ApiSection,
    BotSection,
    DatabaseSection,
    DeliverySection,
    ServerSection,
    SpoolSection,
    check_database_url,
)
from domain.config.webhooks import EVENT_TYPES, EventType, WebhookSubscriber

__all__ = [
    "EVENT_TYPES",
    "ID_RE",
    "MOBILE_RE",
    "ActorRole",
    "ApiSection",
    "BotSection",
    "CategoryRule",
    "ChannelConfig",
    "ChatConfig",
    "Config",
    "ConfigError",
    "CoordinatorCopies",
    "DatabaseSection",
    "DayTypeName",
    "DeliverySection",
    "DingtalkChannelConfig",
    "EnvName",
    "EscalationPolicy",
    "EventType",
    "GradePolicy",
    "Ident",
    "MentionTarget",
    "PersonConfig",
    "PolicySection",
    "Problem",
    "QuietHours",
    "RecordsSection",
    "ResponseFormRule",
    "RoleAssignment",
    "RosterSection",
    "ServerSection",
    "SpoolSection",
    "UnitConfig",
    "WebhookSubscriber",
    "WecomChannelConfig",
    "check_database_url",
    "load_config",
    "parse_config",
    "read_config",
]
