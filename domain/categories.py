"""The default tables of the policy: item categories by keyword and response forms by phrasing.

Plain data, overridable in the TOML (`[[policy.categories]]`, `[[policy.response_forms]]`). The
category names of 000 §二 (突发事件, 自然灾害, 谣言, 政策误读, 道德底线, 切身利益, 上级要求) are
kept as the names the rules refer to; everyday fields (食品安全, 社会治安, 生态环境 …) are
categories of their own. The first rule with a keyword in the text wins, so the urgent kinds come
first: a "学校食堂食物中毒" is a 突发事件 before it is an education matter.
"""

from __future__ import annotations

# Keywords are words of two or more characters that name the matter itself: a bare "事故" also
# names a 医疗事故 or an 教学事故, "过期" an expired ID card, "发霉" a damp wall, "外卖" a
# delivery rider owed wages, "聚集" an industrial cluster (产业聚集区), "被困" being troubled
# (被困扰), "死亡" a death certificate (死亡证明), "不实" "not implemented" (不实行) — so the
# compound people actually write is listed instead ("交通事故", "过期食品", "人死亡" …).
# "泄漏" is kept alone: for information people write 泄露, 泄漏 is gas and chemicals.
DEFAULT_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "谣言",
        ("谣言", "谣传", "造谣", "传谣", "辟谣", "假消息", "假新闻", "虚假信息", "不实信息", "不实消息", "消息不实",
         "失实"),
    ),
    (
        "自然灾害",
        ("地震", "洪水", "洪涝", "山洪", "内涝", "汛情", "暴雨", "暴雪", "雪灾", "冰雹", "台风", "龙卷风", "泥石流",
         "山体滑坡", "地质灾害", "干旱", "旱情", "寒潮", "森林火灾", "山火"),
    ),
    (
        "突发事件",
        (
            "坍塌", "垮塌", "倒塌", "塌陷", "起火", "火灾", "着火", "失火", "爆炸", "爆燃", "泄漏",
            "交通事故", "安全事故", "生产事故", "伤亡事故", "事故现场", "车祸", "相撞", "侧翻",
            "伤亡", "人死亡", "身亡", "遇难", "人受伤", "人员被困", "被困电梯", "溺水", "触电", "坠楼", "踩踏",
            "食物中毒", "中毒", "传染病", "聚集性疫情", "疫情暴发", "疫情爆发", "确诊病例", "疑似病例",
            "群体性", "聚集维权", "集体上访", "群体上访", "拉横幅",
        ),
    ),
    # A higher level's demand decides how the item is answered, whatever its field; "交办" alone
    # is not listed: every 12345 work order is 交办 to a unit.
    (
        "上级要求",
        ("上级交办", "上级督办", "上级要求", "上级关注", "省里要求", "市里要求", "督办", "领导批示", "批示要求"),
    ),
    (
        "道德底线",
        ("虐待", "虐童", "虐杀", "虐猫", "虐狗", "欺凌", "霸凌", "见死不救", "遗弃", "弃婴", "不赡养", "殴打老人",
         "猥亵", "性侵", "道德沦丧", "丧尽天良"),
    ),
    # Before the fields: "网友曲解医保新政" is answered with a 解读, not as a health matter.
    ("政策误读", ("误读", "误解", "曲解", "断章取义", "片面解读", "过度解读", "新规", "新政")),
    (
        "食品安全",
        ("食品安全", "食品卫生", "变质", "霉变", "保质期", "过期食品", "食品过期", "地沟油", "吃出", "异物", "病死猪",
         "注水肉", "瘦肉精", "农药残留", "三无食品", "假冒食品", "非法添加", "后厨", "食堂"),
    ),
    (
        "社会治安",
        ("治安", "打架", "斗殴", "打人", "持刀", "砍人", "伤人", "盗窃", "偷盗", "被盗", "抢劫", "抢夺", "诈骗", "传销",
         "涉黑", "涉恶", "恶势力", "黑恶", "寻衅滋事", "赌博", "吸毒", "贩毒", "敲诈"),
    ),
    (
        "生态环境",
        ("污染", "排污", "偷排", "直排", "黑臭", "发黑", "臭味", "恶臭", "异味", "噪音", "噪声", "扰民", "扬尘",
         "粉尘", "废气", "废水", "烟尘", "油烟", "垃圾", "焚烧", "死鱼", "环保"),
    ),
    (
        "劳动薪酬",
        ("欠薪", "讨薪", "拖欠工资", "欠发工资", "克扣工资", "工资", "工钱", "工程款", "农民工", "劳动合同",
         "劳动仲裁", "加班费", "辞退", "裁员", "工伤", "社保"),
    ),
    (
        "住房物业",
        ("烂尾", "交房", "物业", "业主", "开发商", "楼盘", "房价", "房产证", "不动产证", "安置房", "保障房", "公租房",
         "廉租房", "漏水", "电梯"),
    ),
    (
        "教育",
        ("学校", "学生", "教师", "老师", "校长", "幼儿园", "小学", "中学", "大学", "招生", "入学", "学位", "学区",
         "择校", "校车", "补课", "校外培训", "学费", "教育"),
    ),
    (
        "医疗卫生",
        ("医院", "卫生院", "卫生室", "诊所", "医生", "医护", "护士", "看病", "就医", "医疗", "医保", "疫苗", "药品",
         "药店", "医患", "急救"),
    ),
    (
        "城市管理",
        ("路灯", "井盖", "占道", "违建", "违章建筑", "私搭乱建", "乱停", "停车", "道路破损", "路面破损", "坑洼", "积水",
         "红绿灯", "拥堵", "摊贩", "城管"),
    ),
    # Last: the livelihood matters no field above claims (000 §二 切身利益).
    (
        "切身利益",
        ("征地", "拆迁", "补偿", "安置", "补贴", "养老", "低保", "特困", "残疾", "救助", "停水", "停电", "停气",
         "断水", "断电", "供水", "供电", "供暖", "暖气", "燃气", "收费", "涨价", "水价", "电价", "公交"),
    ),
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
