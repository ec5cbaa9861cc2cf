"""The organisation: units, people, chats and the platform channels that serve them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from domain.config.base import MOBILE_RE, EnvName, Ident, _Model
from domain.vocab import Platform, Role, UnitKind


class UnitConfig(_Model):
    id: Ident
    name: str = Field(min_length=1)
    parent: str | None = None
    kind: UnitKind
    keywords: list[str] = []
    aliases: list[str] = []


class RoleAssignment(_Model):
    role: Role
    unit: str | None = None


class PersonConfig(_Model):
    id: Ident
    name: str = Field(min_length=1)
    mobile: str | None = None
    wecom_userid: str | None = None
    dingtalk_userid: str | None = None
    roles: list[RoleAssignment] = []
    # AB角: the person's named stand-in (a person id), @-mentioned instead while this person is on leave.
    deputy: str | None = None

    @field_validator("mobile")
    @classmethod
    def _mainland_mobile(cls, value: str | None) -> str | None:
        if value is not None and not MOBILE_RE.match(value):
            raise ValueError(f"“{value}”不是大陆手机号（应为 11 位数字，以 1 开头）")
        return value


class ChatConfig(_Model):
    id: Ident
    platform: Platform
    name: str = Field(min_length=1)
    unit: str | None = None
    coordinators: bool = False
    admins: bool = False
    platform_chat_id: str | None = None
    # Name of the environment variable holding this chat's own robot webhook URL; when unset the
    # chat uses its channel's webhook_env (each group robot has its own URL).
    webhook_env: EnvName | None = None
    # DingTalk only: the variable holding this chat's own robot's 加签 secret (each custom robot
    # has its own SEC… secret); when unset the channel's secret_env is used.
    secret_env: EnvName | None = None
    # Stand-in for the roster: who is on duty for this chat when no roster says otherwise.
    duty_officers: list[str] = []
    duty_leaders: list[str] = []

    @model_validator(mode="after")
    def _secret_only_on_dingtalk(self) -> ChatConfig:
        # A WeCom group robot's webhook carries its key in the URL and takes no signing secret:
        # a secret_env there would be silently ignored, so say so instead.
        if self.secret_env is not None and self.platform is not Platform.DINGTALK:
            raise ValueError("secret_env 仅适用于钉钉群（企业微信群机器人的 webhook 不需要加签密钥），请删除此项")
        return self



class WecomChannelConfig(_Model):
    """WeCom: the AI bot (智能机器人, API mode) receives; the group robot webhook sends."""

    id: Ident
    platform: Literal["wecom"]
    chats: list[str] = Field(min_length=1)
    token_env: EnvName = "DUTYBOT_WECOM_TOKEN"
    aes_key_env: EnvName = "DUTYBOT_WECOM_AES_KEY"
    webhook_env: EnvName = "DUTYBOT_WECOM_WEBHOOK"
    # The receive id checked after decryption: empty for the AI bot, the CorpID for a self-built app.
    receive_id: str = ""
    # Markdown (with <@userid>) or plain text (with mentioned_list) for webhook posts.
    message_format: Literal["text", "markdown"] = "text"


class DingtalkChannelConfig(_Model):
    """DingTalk: the enterprise-internal app robot receives; the custom robot (加签) sends."""

    id: Ident
    platform: Literal["dingtalk"]
    chats: list[str] = Field(min_length=1)
    mode: Literal["http", "stream"] = "http"
    app_key_env: EnvName = "DUTYBOT_DINGTALK_APP_KEY"  # Stream mode only (clientId)
    # The app's robot (robotCode, by default the app key when one is set) and organisation
    # (chatbotCorpId). A callback's signature covers only its timestamp: a message naming another
    # robot or organisation is refused, whatever its signature.
    robot_code: str | None = Field(default=None, min_length=1, max_length=128)
    corp_id: str | None = Field(default=None, min_length=1, max_length=128)
    app_secret_env: EnvName = "DUTYBOT_DINGTALK_APP_SECRET"
    webhook_env: EnvName = "DUTYBOT_DINGTALK_WEBHOOK"
    secret_env: EnvName = "DUTYBOT_DINGTALK_SECRET"
    # DingTalk itself allows an hour; a shorter window narrows replay of a captured signature.
    max_skew_seconds: int = Field(default=300, ge=5, le=3600)
    message_format: Literal["text", "markdown"] = "text"


ChannelConfig = Annotated[WecomChannelConfig | DingtalkChannelConfig, Field(discriminator="platform")]
