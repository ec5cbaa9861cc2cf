"""The platform payloads as pydantic models (issue #15, point 2): what is required is strict, what is
only read when it makes sense is lenient, and fields the platforms add later are tolerated.
Wire facts from /work/shared/protocols/PROTOCOLS.md B.2, B.3, D.1, D.2."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from bot.channels.dingtalk_payloads import GatewayTicket, RobotPayload, parse_robot_message
from bot.channels.payloads import error_fields
from bot.channels.wecom_parse import Refused, aibot_message, json_envelope, parse_xml
from bot.channels.wecom_payloads import AibotMessage, AppEnvelope, AppMessage, Envelope, message_text, xml_fields

SECRET_LOOKING = "s3cr3t-value-never-logged"

# -- DingTalk: the robot message (HTTP callback body = Stream frame data) -----------------------------------------

# Every field PROTOCOLS.md D.1 lists, as DingTalk documents them.
ROBOT: dict[str, Any] = {
    "msgtype": "text", "text": {"content": " 上报 城关镇人民路路灯不亮"}, "msgId": "msgXYZ==",
    "createAt": 1613630252678, "conversationType": "2", "conversationId": "cidQingHe==",
    "conversationTitle": "清河县舆情值班群", "senderId": "$:LWCP_v1:$abc", "senderNick": "孙丽",
    "senderCorpId": "dingcorp", "senderStaffId": "dt_sunli", "chatbotCorpId": "dingcorp",
    "chatbotUserId": "$:LWCP_v1:$bot", "robotCode": "dingrobot", "isAdmin": False, "isInAtList": True,
    "atUsers": [{"dingtalkId": "$:LWCP_v1:$bot"}, {"dingtalkId": "$:LWCP_v1:$x", "staffId": "dt_x"}],
    "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=s1",
    "sessionWebhookExpiredTime": 1613635652738,
}


def test_a_documented_robot_message_is_read_whole() -> None:
    payload = RobotPayload.model_validate(ROBOT)
    assert (payload.msg_id, payload.conversation_id, payload.conversation_type) == ("msgXYZ==", "cidQingHe==", "2")
    assert (payload.sender_staff_id, payload.robot_code, payload.chatbot_corp_id) == (
        "dt_sunli", "dingrobot", "dingcorp")
    assert payload.create_at == 1613630252678 and payload.session_webhook_expired_time == 1613635652738
    assert [(u.dingtalk_id, u.staff_id) for u in payload.at_users] == [("$:LWCP_v1:$bot", None),
                                                                       ("$:LWCP_v1:$x", "dt_x")]
    message = payload.message()
    assert message.text == "上报 城关镇人民路路灯不亮"  # DingTalk's leading space is dropped
    assert message.session_webhook == ROBOT["sessionWebhook"]
    assert message.session_expires_at == datetime(2021, 2, 18, 8, 7, 32, 738000, tzinfo=UTC)
    assert (message.robot_code, message.corp_id, message.staff_id) == ("dingrobot", "dingcorp", "dt_sunli")


def test_fields_dingtalk_adds_later_are_tolerated() -> None:
    newer = ROBOT | {"senderPlatform": "Mac", "isNewFeature": {"nested": [1, 2]}, "text": {"content": "x", "extra": 1},
                     "atUsers": [{"dingtalkId": "a", "unionId": "u"}]}
    assert parse_robot_message(newer) == parse_robot_message(ROBOT | {"text": {"content": "x"},
                                                                     "atUsers": [{"dingtalkId": "a"}]})


@pytest.mark.parametrize("missing", ["msgId", "conversationId", "msgtype"])
def test_a_robot_message_without_a_required_field_is_refused(missing: str) -> None:
    data = {k: v for k, v in ROBOT.items() if k != missing}
    with pytest.raises(ValidationError) as caught:
        RobotPayload.model_validate(data)
    assert error_fields(caught.value) == missing
    assert parse_robot_message(data) is None


@pytest.mark.parametrize(
    ("change", "path"),
    [({"msgId": 12345}, "msgId"), ({"msgId": ""}, "msgId"), ({"conversationId": ["cid"]}, "conversationId"),
     ({"msgtype": True}, "msgtype"), ({"text": {"content": 3}}, "text: content"), ({"text": "flat"}, "text: (root)"),
     ({"msgtype": "richText", "content": {"richText": "flat"}}, "content: richText")],
)
def test_a_robot_message_of_the_wrong_types_is_refused(change: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RobotPayload.model_validate(ROBOT | change)
    assert error_fields(caught.value) == path


@pytest.mark.parametrize(
    ("change", "read"),
    [({"senderStaffId": 42}, ("sender_staff_id", None)), ({"robotCode": None}, ("robot_code", None)),
     ({"chatbotCorpId": {"id": "x"}}, ("chatbot_corp_id", None)),
     ({"conversationType": 2}, ("conversation_type", None)),
     ({"sessionWebhookExpiredTime": "soon"}, ("session_webhook_expired_time", None)),
     ({"sessionWebhookExpiredTime": "1613635652738"}, ("session_webhook_expired_time", 1613635652738)),
     ({"sessionWebhookExpiredTime": 10**20}, ("session_webhook_expired_time", None)),
     ({"atUsers": "everyone"}, ("at_users", [])), ({"sessionWebhook": 7}, ("session_webhook", None))],
)
def test_optional_fields_of_the_wrong_type_read_as_absent(change: dict[str, Any], read: tuple[str, Any]) -> None:
    field, value = read
    assert getattr(RobotPayload.model_validate(ROBOT | change), field) == value


def test_a_picture_is_an_empty_text_and_its_text_field_is_not_read() -> None:
    picture = {k: v for k, v in ROBOT.items() if k != "text"} | {"msgtype": "picture", "text": "unused",
                                                                 "content": {"downloadCode": "x"}}
    message = parse_robot_message(picture)
    assert message is not None and message.text == ""


def test_a_validation_error_names_fields_never_values() -> None:
    for change, path in (({"msgId": {"secret": SECRET_LOOKING}, "conversationId": [SECRET_LOOKING]},
                          "conversationId, msgId"),
                         ({"text": {"content": [SECRET_LOOKING]}}, "text: content")):
        with pytest.raises(ValidationError) as caught:
            RobotPayload.model_validate(ROBOT | change)
        logged = error_fields(caught.value)
        assert logged == path and SECRET_LOOKING not in logged


def test_lone_surrogates_are_kept_for_the_handler_to_clean() -> None:
    """JSON may carry "\\ud800": pydantic's own str refuses it, the bot keeps and cleans it later."""
    message = parse_robot_message(ROBOT | {"msgId": "m\ud800", "text": {"content": "上报\udfff"}})
    assert message is not None and (message.msg_id, message.text) == ("m\ud800", "上报\udfff")


@pytest.mark.parametrize("data", [None, [ROBOT], "msgId", 5])
def test_what_is_no_json_object_is_no_robot_message(data: object) -> None:
    assert parse_robot_message(data) is None


def test_the_gateway_ticket() -> None:
    ticket = GatewayTicket.model_validate({"endpoint": "wss://wss-open-connection.dingtalk.com:443/connect",
                                           "ticket": "tk/1+2=3", "extra": True})
    assert (ticket.endpoint, ticket.ticket) == ("wss://wss-open-connection.dingtalk.com:443/connect", "tk/1+2=3")
    bad_answers: list[object] = [{"endpoint": "https://x", "ticket": "t"}, {"endpoint": "wss://x"},
                                 {"endpoint": "wss://x", "ticket": 1}, {"code": "InvalidAuthentication"}, []]
    for bad in bad_answers:
        with pytest.raises(ValidationError):
            GatewayTicket.model_validate(bad)


# -- WeCom: the AI bot's JSON --------------------------------------------------------------------------------------

AIBOT: dict[str, Any] = {
    "msgid": "CAIQ16HMjQYY", "aibotid": "AIBOTID", "chatid": "wrkSFfCgAAqinghe0000duty", "chattype": "group",
    "from": {"userid": "ZhaoMin"}, "create_time": 1700000000, "msgtype": "text",
    "response_url": "https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RC1",
    "text": {"content": "@值班助手 上报 城关镇人民路路灯不亮"},
}


def test_an_aibot_text_message() -> None:
    message = AibotMessage.model_validate(AIBOT)
    assert (message.msgid, message.sender.userid, message.group_chat) == ("CAIQ16HMjQYY", "ZhaoMin",
                                                                          "wrkSFfCgAAqinghe0000duty")
    assert message.plain_text() == "上报 城关镇人民路路灯不亮"  # the mention WeCom leaves in is dropped
    assert message.response_url == AIBOT["response_url"]


def test_an_aibot_message_in_a_single_chat_names_no_group() -> None:
    single = {k: v for k, v in AIBOT.items() if k != "chatid"} | {"chattype": "single"}
    assert AibotMessage.model_validate(single).group_chat is None
    assert AibotMessage.model_validate(AIBOT | {"chattype": "single"}).group_chat is None


def test_fields_wecom_adds_later_are_tolerated() -> None:
    newer = AIBOT | {"quote": {"msgtype": "text", "text": {"content": "原文"}}, "from": {"userid": "ZhaoMin",
                                                                                        "corpid": "ww1"},
                     "new_field": [1, {"x": None}]}
    assert AibotMessage.model_validate(newer).plain_text() == "上报 城关镇人民路路灯不亮"


def test_mixed_and_voice_messages() -> None:
    mixed = AIBOT | {"msgtype": "mixed", "mixed": {"msg_item": [
        {"msgtype": "text", "text": {"content": "@值班助手 上报 路灯"}}, {"msgtype": "image", "image": {"url": "u"}},
        "junk", {"msgtype": "text", "text": {"content": 5}}, {"msgtype": "text", "text": {"content": "见截图"}}]}}
    assert AibotMessage.model_validate(mixed).plain_text() == "上报 路灯\n见截图"
    assert message_text({"msgtype": "voice", "voice": {"content": "值班"}}) == "值班"
    assert message_text({"msgtype": "image", "image": {"url": "u"}}) is None


@pytest.mark.parametrize(
    ("change", "path"),
    [({"msgid": None}, "msgid"), ({"msgid": 123}, "msgid"), ({"msgid": ""}, "msgid"), ({"from": None}, "from"),
     ({"from": {"userid": ""}}, "from.userid"), ({"from": {"userid": 7}}, "from.userid"),
     ({"from": "ZhaoMin"}, "from")],
)
def test_an_aibot_message_without_its_sender_or_id_is_refused(change: dict[str, Any], path: str) -> None:
    data = {k: v for k, v in (AIBOT | change).items() if v is not None}
    with pytest.raises(ValidationError) as caught:
        AibotMessage.model_validate(data)
    assert error_fields(caught.value) == path
    with pytest.raises(Refused) as refused:
        aibot_message(_json(data))
    assert refused.value.status == 400


@pytest.mark.parametrize("change", [{"chattype": 1}, {"chatid": ["x"]}, {"text": "flat"}, {"mixed": {"msg_item": 1}}])
def test_optional_aibot_fields_of_the_wrong_type_read_as_absent(change: dict[str, Any]) -> None:
    AibotMessage.model_validate(AIBOT | change)  # does not raise
    assert AibotMessage.model_validate(AIBOT | change | {"msgtype": "mixed"}).plain_text() is None


def test_events_and_stream_refreshes_carry_no_message() -> None:
    assert aibot_message(_json({"msgtype": "event", "event": {"eventtype": "enter_chat"}})) is None
    assert aibot_message(_json({"msgtype": "stream", "stream": {"id": "s"}})) is None
    assert isinstance(aibot_message(_json(AIBOT)), AibotMessage)
    for plaintext in (b"not json", b"[1]"):
        with pytest.raises(Refused) as refused:
            aibot_message(plaintext)
        assert refused.value.status == 400


def test_the_envelope_holds_only_an_ascii_ciphertext() -> None:
    assert Envelope.model_validate({"encrypt": "QUJD", "extra": 1}).encrypt == "QUJD"
    assert json_envelope(b'{"encrypt": "QUJD"}') == "QUJD"
    for body in (b'{"encrypt": ""}', b'{"encrypt": 5}', b"{}", b'["QUJD"]', '{"encrypt": "密文"}'.encode(),
                 b'{"encrypt": "\\ud800"}', b"not json"):
        with pytest.raises(Refused) as refused:
            json_envelope(body)
        assert refused.value.status == 400, body


# -- WeCom: a self-built app's XML, after defusedxml ---------------------------------------------------------------

CLASSIC = (  # the decrypted message of WeCom's crypto doc example (test_vectors.json, wecom-doc-classic-message)
    b"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n"
    b"<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n"
    b"<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>"
)


def test_the_app_message_of_the_documented_example() -> None:
    message = AppMessage.model_validate(xml_fields(parse_xml(CLASSIC)))
    assert (message.from_user, message.msg_type, message.content, message.msg_id) == (
        "mycreate", "text", "hello", "4561255354251345929")


def test_an_app_event_and_unknown_elements() -> None:
    event = parse_xml(b"<xml><FromUserName>u</FromUserName><MsgType>event</MsgType><Event>enter_agent</Event>"
                      b"<NewElement><x/></NewElement><FromUserName>second</FromUserName></xml>")
    message = AppMessage.model_validate(xml_fields(event))
    assert (message.from_user, message.msg_type, message.content) == ("u", "event", None)  # the first of a name


def test_the_app_envelope_needs_its_ciphertext() -> None:
    envelope = parse_xml(b"<xml><ToUserName>ww1</ToUserName><Encrypt>QUJD</Encrypt><AgentID>1</AgentID></xml>")
    assert AppEnvelope.model_validate(xml_fields(envelope)).encrypt == "QUJD"
    for xml in (b"<xml><ToUserName>ww1</ToUserName></xml>", b"<xml><Encrypt></Encrypt></xml>"):
        with pytest.raises(ValidationError):
            AppEnvelope.model_validate(xml_fields(parse_xml(xml)))


def _json(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()
