"""The default tables of the policy: item categories by keyword and response forms by phrasing.

Plain data, overridable in the TOML (`[[policy.categories]]`, `[[policy.response_forms]]`). The
category names of 000 §二 (突发事件, 自然灾害, 谣言, 政策误读, 道德底线, 切身利益, 上级要求) are
kept as the names the rules refer to; everyday fields (食品安全, 社会治安, 生态环境 …) are
categories of their own. The first rule with a keyword in the text wins, so the urgent kinds come
first: a "学校食堂食物中毒" is a 突发事件 before it is an education matter.
"""

from __future__ import annotations

DEFAULT_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("谣言", ("谣言", "不实", "造谣", "假消息", "辟谣", "网传不实")),
    ("自然灾害", ("地震", "洪水", "洪涝", "内涝", "暴雨", "台风", "泥石流", "山体滑坡", "干旱", "冰雹", "森林火灾")),
    (
        "突发事件",
        (
            "坍塌", "垮塌", "起火", "火灾", "着火", "爆炸", "泄漏", "事故", "车祸", "伤亡", "死亡", "遇难", "受伤",
            "溺水", "触电", "踩踏", "食物中毒", "中毒", "疫情", "传染", "群体性", "聚集", "堵路",
        ),
    ),
    ("食品安全", ("食品安全", "变质", "过期", "发霉", "地沟油", "异物", "食堂", "外卖", "餐馆卫生")),
    ("社会治安", ("打架", "斗殴", "盗窃", "偷盗", "抢劫", "诈骗", "涉黑", "恶势力", "赌博", "治安")),
    ("生态环境", ("污染", "排污", "臭味", "异味", "噪音", "噪声", "扬尘", "垃圾", "黑水", "废气", "环保")),
    ("劳动薪酬", ("欠薪", "讨薪", "拖欠工资", "工资", "农民工", "劳动合同", "社保")),
    ("住房保障", ("烂尾", "交房", "物业", "房价", "房产证", "拆迁", "征地", "安置房", "漏水", "电梯")),
    ("教育", ("学校", "学生", "教师", "老师", "幼儿园", "招生", "校车", "补课", "学区")),
    ("医疗卫生", ("医院", "卫生院", "医生", "看病", "医保", "疫苗", "诊所", "药品")),
    ("上级要求", ("上级", "省里", "市里要求", "督办", "交办")),
    ("政策误读", ("政策", "误读", "文件", "新规")),
    ("道德底线", ("虐待", "欺凌", "见死不救", "道德")),
    ("切身利益", ("补偿", "养老", "低保", "停水", "停电", "停气", "供暖", "收费")),
)

# Response forms (004 第八条; 000 §四(四)) and how people write them (DOMAIN.md). The longest
# phrase at the start of "回应 #N …" names the form, so a phrase may contain a shorter one of the
# same form ("召开新闻发布会" ⊃ "发布会"); a phrase that starts like another form's would make a
# form glued to its content ambiguous, and then a space is needed.
DEFAULT_RESPONSE_FORMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "网上发布",
        (
            "网上发布信息", "发布权威信息", "权威信息", "发布情况通报", "情况通报", "发布通报", "官方通报",
            "发布情况说明", "情况说明", "官方账号发布", "官方发布", "官微发布", "发布信息", "网上回应",
        ),
    ),
    ("专家解读", ("组织专家解读", "邀请专家解读", "专家")),
    ("新闻发布会", ("召开新闻发布会", "举行新闻发布会", "召开发布会", "发布会", "新闻发布", "召开记者会", "记者会")),
    ("媒体专访", ("接受媒体采访", "接受记者采访", "接受专访", "媒体采访", "专访", "采访")),
    ("公开答复", ("网上答复", "留言答复", "公开回复", "答复", "回复")),
    ("辟谣澄清", ("发布辟谣", "辟谣声明", "澄清说明", "辟谣", "澄清")),
)
