"""Issue #13 (8, part): a notice a robot refuses for a configuration reason (WeCom 93000, DingTalk
310000, a missing webhook) is held, not failed, and sent once the robot accepts again (a periodic
probe, run at start and every [delivery] held_probe_seconds); the admins are told on a chat that
reaches a person (the example config's ops chat is a WeCom group with a robot of its own). And a
digest keeps each notice's item number, grade, summary line, lead unit, deadline and mentions.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.clock import ManualClock
from bot.outbox_digest import digest
from bot.runtime import Runtime
from domain.config import Config
from domain.directory import Directory
from store import outbox
from store.models import Item, OutboxMessage
from tests.conftest import START, Bot, start_bot
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import DUTY_KEY, OPS_KEY, FakeWecom, running, wecom_environ


async def rows(runtime: Runtime) -> dict[str, OutboxMessage]:
    async with runtime.db.read() as session:
        return {r.key: r for r in (await session.execute(select(OutboxMessage))).scalars()}


async def notify(runtime: Runtime, chat_id: str, keys: list[str], now_at: ManualClock) -> None:
    async with runtime.db.transaction() as session:
        for key in keys:
            await outbox.enqueue(session, key=key, chat_id=chat_id, text=f"【通知】{key}", mentions=["zhao_min"],
                                 now=now_at.now())


async def test_a_revoked_wecom_key_holds_notices_alerts_the_ops_chat_and_sends_them_once_fixed(
    config: Config, clock: ManualClock
) -> None:
    fake = FakeWecom()
    fake.keys.add(OPS_KEY)  # the ops chat's own robot
    await fake.start()
    client = await start_bot(config, clock, wecom_environ(fake, DUTYBOT_WECOM_OPS_WEBHOOK=fake.webhook_url(OPS_KEY)))
    runtime = Bot(client, clock, config).runtime
    try:
        fake.keys.discard(DUTY_KEY)  # the duty group's robot was removed: its key is revoked
        await notify(runtime, "wecom_duty", ["n:1", "n:2", "n:3"], clock)
        while await runtime.outbox.run_once():
            pass
        await runtime.outbox.drain()
        held = await rows(runtime)
        assert {held[k].status for k in ("n:1", "n:2", "n:3")} == {outbox.HELD}  # held, not failed
        assert all(held[k].claimed_by is None and held[k].lease_until is None for k in ("n:1", "n:2", "n:3"))
        # The admins are told on the ops chat's own robot, which reaches them, with an @.
        [alert] = [p for p in fake.webhook_posts(OPS_KEY) if p.content.startswith("【系统告警】")]
        assert "93000" in alert.content and "暂存" in alert.content and alert.mentioned_list == ["XuMing"]
        assert len([k for k in held if k.startswith("alert:config:")]) == 1  # once per hour and chat
        tried = len(fake.webhook_posts(DUTY_KEY))

        # Still refused: a probe tries one held notice, which is held again; no new alert this hour.
        clock.advance(timedelta(minutes=1))
        assert await runtime.outbox.probe_held() == 1
        await runtime.outbox.drain()
        assert len(fake.webhook_posts(DUTY_KEY)) == tried + 1
        assert {r.status for k, r in (await rows(runtime)).items() if k.startswith("n:")} == {outbox.HELD}
        assert len([k for k in await rows(runtime) if k.startswith("alert:config:")]) == 1

        # Fixed: the next probe's notice goes through and the others follow at once.
        fake.keys.add(DUTY_KEY)
        clock.advance(timedelta(minutes=1))
        assert await runtime.outbox.probe_held() == 1
        await runtime.outbox.drain()
        after = await rows(runtime)
        assert {after[k].status for k in ("n:1", "n:2", "n:3")} == {outbox.SENT}
        delivered = [p.content for p in fake.delivered("webhook", DUTY_KEY)]
        assert sorted(delivered) == ["【通知】n:1", "【通知】n:2", "【通知】n:3"]
    finally:
        await client.close()
        await fake.close()


async def test_a_dingtalk_signature_error_is_held_until_a_restart_with_the_right_secret(
    config: Config, clock: ManualClock
) -> None:
    async with FakeDingTalk(clock) as fake:
        wrong = "SECwrong0000000000000000000000000000000000000000000000000000000"
        client = await start_bot(config, clock, fake.environ(DUTYBOT_DINGTALK_SECRET=wrong))
        runtime = Bot(client, clock, config).runtime
        try:
            await notify(runtime, "dingtalk_duty", ["d:1", "d:2"], clock)
            await runtime.outbox.run_once()
            held = await rows(runtime)
            assert {held["d:1"].status, held["d:2"].status} == {outbox.HELD}
            assert held["d:1"].last_error == "errcode 310000: sign not match"
            [alert] = [r for k, r in held.items() if k.startswith("alert:config:dingtalk:")]
            assert alert.chat_id == "ops" and "310000" in alert.text  # a WeCom group: it reaches a person
        finally:
            await client.close()
        # The secret is fixed and the service restarted: the probe at start sends them.
        client = await start_bot(config, clock, fake.environ())
        runtime = Bot(client, clock, config).runtime
        try:
            assert await runtime.outbox.probe_held() == 1
            await runtime.outbox.drain()
            after = await rows(runtime)
            assert {after["d:1"].status, after["d:2"].status} == {outbox.SENT}
            sent = sorted(p.text.splitlines()[0] for p in fake.posts_of("robot") if p.ok)
            assert sent == ["【通知】d:1", "【通知】d:2"]
        finally:
            await client.close()


async def test_a_missing_webhook_holds_the_chats_notices(config: Config, clock: ManualClock) -> None:
    async with running(config, clock, DUTYBOT_WECOM_COORD_WEBHOOK="") as w:
        await notify(w.bot.runtime, "coordinators", ["c:1"], clock)
        await w.bot.runtime.outbox.run_once()
        row = (await rows(w.bot.runtime))["c:1"]
        assert row.status == outbox.HELD and "DUTYBOT_WECOM_COORD_WEBHOOK" in (row.last_error or "")


def test_the_example_config_tells_admins_on_a_platform_chat_with_its_own_robot(config: Config) -> None:
    directory = Directory(config)
    [ops] = directory.admin_chats()
    assert ops.platform.value == "wecom" and ops.webhook_env == "DUTYBOT_WECOM_OPS_WEBHOOK"
    assert any(ops.id in channel.chats for channel in config.channels)


def test_a_digest_keeps_number_grade_summary_lead_unit_deadline_and_mentions(config: Config) -> None:
    directory = Directory(config)
    due = START + timedelta(hours=2)

    def item(n: int, **extra: object) -> Item:
        values: dict[str, object] = {
            "id": n, "number": n, "chat_id": "wecom_duty", "source": "网络", "link": None,
            "summary": f"西岸滨河路第{n}段路灯不亮，群众反映夜间出行不便", "category": "其他", "grade": "较大",
            "lead_unit_id": "xian", "status": "已转办", "reported_by": "liu_yang", "reported_at": START,
            "grade_due_at": START, "graded_at": START, "pass_on_due_at": due,
            "response_due_at": due + timedelta(days=2),
            "classified": False, "referred_to": [], "updated_at": START,
        }
        values.update(extra)
        return Item(**values)

    reminder = OutboxMessage(id=1, key="r1", chat_id="wecom_duty", item_id=1, mentions=["you_jia", "zhao_min"],
                             text="【提醒】#1 较大｜签收时限 11月23日 12:00（剩余1小时）\n"
                                  "摘要：西岸滨河路第1段路灯不亮\n请承办单位立即签收",
                             due_at=START, clock="pass_on", clock_due=due, late=False)
    copy = OutboxMessage(id=2, key="c2", chat_id="wecom_duty", item_id=2, mentions=["qin_lei"],
                         text="【转办】线索已转交承办单位办理\n请及时签收", due_at=START, clock=None, clock_due=None,
                         late=True)
    secret = OutboxMessage(id=3, key="s3", chat_id="wecom_duty", item_id=3, mentions=[],
                           text="【进展】有新的处置进展", due_at=START, clock=None, clock_due=None, late=False)
    items = {1: item(1), 2: item(2, grade=None, lead_unit_id=None, status="待定级", grade_due_at=due, graded_at=None),
             3: item(3, classified=True, authorised_summary="某涉密事项（已授权摘要）")}
    text, mentions = digest([reminder, copy, secret], items, directory)
    lines = text.splitlines()
    assert lines[0] == "【汇总】因发送频率限制，以下3条消息合并发送："
    assert lines[1] == ("· 【提醒】#1 较大｜签收时限 11月23日 12:00（剩余1小时）｜摘要：西岸滨河路第1段路灯不亮"
                        "｜牵头：清河县西岸街道办事处")
    assert lines[2] == ("· 【转办】线索已转交承办单位办理｜摘要：西岸滨河路第2段路灯不亮，群众反映夜间出行不便"
                        "｜等级：未定级｜牵头：未指定｜时限：11月23日 12:00 请及时签收")
    assert "某涉密事项（已授权摘要）" in lines[3] and "路灯" not in lines[3]  # 涉密: only the authorised summary
    assert mentions == ["you_jia", "zhao_min", "qin_lei"]
