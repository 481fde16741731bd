"""The PII detector's hand-written knowledge: cue words, unit words, checksums and value shapes.

Kept apart from the detector and its families so the rules can be read, reviewed and extended as data. Everything
here is written for this project from the public rules of the identifiers (GB 11643 resident ID check digit,
ISO/IEC 7812 Luhn, MIIT mobile prefixes, GA 36 plates, service-number ranges); nothing is taken from
evaluation data.
"""

from __future__ import annotations

import re
from datetime import date

PHONE = "PHONE"
ID_CARD = "ID_CARD"
BANK_CARD = "BANK_CARD"
EMAIL = "EMAIL"
NAME = "NAME"
ADDRESS = "ADDRESS"
VERIFICATION_CODE = "VERIFICATION_CODE"
PASSPORT = "PASSPORT"
LICENSE_PLATE = "LICENSE_PLATE"
ALL_TYPES: tuple[str, ...] = (
    PHONE, ID_CARD, BANK_CARD, EMAIL, NAME, ADDRESS, VERIFICATION_CODE, PASSPORT, LICENSE_PLATE,
)
NUMBER_TYPES = frozenset({PHONE, ID_CARD, BANK_CARD, VERIFICATION_CODE})

# Cue kinds besides the types: NEG = a business or quantity word (the number after it is not PII), PIECE = a
# piece of an identifier (尾号, 后四位) whose type comes from a neighbouring cue, WEAK = 号码 and the like
# (a phone number unless the digits' shape says otherwise).
NEG = "NEG"
PIECE = "PIECE"
WEAK = "WEAK"

CUES: dict[str, tuple[str, ...]] = {
    PHONE: (
        "手机号码", "手机号", "手机", "电话号码", "电话", "座机号码", "座机", "固话", "联系方式", "联系号码",
        "打我这个", "打我", "打这个号", "回电", "回拨", "来电号码", "微信同号", "号码也是",
    ),
    WEAK: ("号码", "这个号", "那个号", "新号", "号是"),
    ID_CARD: (
        "身份证号码", "身份证号", "身份证", "证件号码", "证件号", "身份号码", "身份证件", "公民身份号码", "证件",
    ),
    BANK_CARD: (
        "银行卡号", "银行卡", "卡号", "储蓄卡", "信用卡", "借记卡", "工资卡", "银联卡", "账号",
        "帐号", "账户", "帐户", "收款账户", "这张卡", "的卡", "卡片", "银行", "卡",
    ),
    VERIFICATION_CODE: (
        "验证码", "动态码", "校验码", "短信码", "动态密码", "短信验证", "验证号码", "确认码", "激活码", "随机码",
        "授权码", "登录码", "认证码", "效验码",
    ),
    PASSPORT: ("护照号码", "护照号", "护照", "通行证号码", "通行证号", "通行证", "台胞证", "回乡证", "旅行证"),
    LICENSE_PLATE: ("车牌号码", "车牌号", "车牌"),
    EMAIL: ("邮箱地址", "邮箱", "电子邮件", "电子邮箱", "邮件", "email", "e-mail", "mail"),
    PIECE: (
        "尾号", "后四位", "后六位", "后三位", "后两位", "后几位", "末四位", "末尾", "最后四位", "最后几位",
        "前六位", "前四位", "前三位", "前几位", "中间几位", "开头", "结尾",
    ),
    NEG: (
        "订单号", "订单", "单号", "工单", "投诉", "流水号", "流水", "交易号", "交易单", "发票", "税号", "信用代码",
        "合同", "工号", "编号", "邮编", "邮政编码", "快递", "运单", "物流", "退货", "型号", "航班", "车次", "座位",
        "余额", "金额", "积分", "额度", "利率", "利息", "套餐", "流量", "话费", "客服电话", "服务电话", "热线",
        "客服", "密码", "取件码", "提货码", "取餐码", "会员号", "分机", "房间号", "房号", "票号", "批次", "还款",
        "扣款", "退款金额", "价格", "多少钱", "排队", "邮政", "序列号", "串号", "IMEI", "imei", "宽带账号",
        "电话卡", "房卡", "会员卡", "购物卡", "社保卡", "医保卡", "公交卡", "积分卡", "QQ号", "QQ", "qq", "微信号",
        "微信", "就诊卡", "户号", "病历号", "床号", "门诊号", "住院号", "排队号", "窗口号", "挂号", "限行", "车次号",
        "发动机号", "发动机", "车架号", "车架", "VIN", "准考证号", "准考证", "考号", "学号", "代码", "资金账号",
        "资金账户", "证券账户", "股东账户",
    ),
}
# The recognizer's homophones in cue words (码→吗/马, 号→好, 证→正/政, 份→分, 机→鸡/几, 银行→银航): each cue also
# counts in these spellings. Written from how Mandarin ASR confuses these syllables, not from any data set.
HOMOPHONES: dict[str, tuple[str, ...]] = {
    "码": ("吗", "马"), "号": ("好",), "证": ("正", "政"), "份": ("分",), "机": ("几",), "银行": ("银航",),
    "护照": ("户照",), "车牌": ("车排",),
}


_NO_HOMOPHONES = frozenset({"短信码", "打这个号", "号码也是", "微信同号"})  # the variants are everyday phrases


def _with_homophones(words: tuple[str, ...]) -> tuple[str, ...]:
    out = list(words)
    for w in words:
        if len(w) < 3 or w in _NO_HOMOPHONES:
            continue  # short words (卡, 号码) would turn into common words
        for a, alts in HOMOPHONES.items():
            if a in w:
                out.extend(w.replace(a, b) for b in alts)
    return tuple(dict.fromkeys(out))


for _kind in (PHONE, ID_CARD, BANK_CARD, VERIFICATION_CODE, PASSPORT, LICENSE_PLATE):
    CUES[_kind] = _with_homophones(CUES[_kind])

# A landline's extension: after a phone number these words join the extension to it (0755-2666 1234 转 802);
# on their own they name an internal number (前台分机是 8008), not PII.
EXTENSION = re.compile(r"^\s*(?:转分机号?|分机号?是?|转)\s*$|^-$")
EXTENSION_WORDS = frozenset({"分机", "转分机"})

# Cues that do not need the digits right next to them in a sentence (the rest must be within _CUE_WINDOW).
CUE_WINDOW = 12  # characters between a cue's end and the digits it introduces
AFTER_WINDOW = 10  # characters between digits and a cue that names them afterwards (2994的信用卡, … 这是我手机号)

# A number directly followed by one of these is a quantity, a date, a price or a rank, not an identifier.
UNITS_AFTER: tuple[str, ...] = (
    "块", "元", "%", "分", "号", "日", "年", "月", "点", "个", "张", "次", "天", "岁", "期", "斤", "克", "码",
    "楼", "层", "室", "栋", "幢", "单元", "折", "倍", "小时", "秒", "位", "人", "条", "笔", "台", "件", "度", "米",
    "公里", "兆", "G", "g", "M", "m", "K", "k", "T", "w", "W", "万", "千", "百", "mb", "MB", "毫", "周", "届",
    "路", "级", "寸", "瓶", "箱", "罐", "袋", "包", "份", "本", "支", "只", "部", "款", "版", "代", "集", "遍",
    "趟", "单", "户", "家", "间", "套", "晚", "届", "名",
)
CURRENCY_BEFORE = frozenset("¥￥$€£")

# Service numbers (never a private person's phone): 95xxx banks/carriers, 96xxx local, 100xx carriers,
# 123xx public hotlines, 1xxxx short numbers, 110/119/120/122, 400/800 numbers.
HOTLINE = re.compile(r"(?:95\d{3,6}|96\d{3,6}|100\d{2,3}|123\d{2}|1[01]\d{3}|11[0-9]|12[0-9]|[48]00\d{7})")

MOBILE = re.compile(r"(?:\+?0{0,2}86)?1[3-9]\d{9}")
LANDLINE = re.compile(r"(?:\+?0{0,2}86)?0[1-9]\d{8,10}")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_checksum_ok(value: str) -> bool:
    """GB 11643 check digit of an 18-character resident ID (last character may be X)."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17].upper()


def id_plausible(value: str) -> bool:
    """Shape of a resident ID: region code (first digit 1–8), a real birth date 1900–today, 3 digits, check."""
    if len(value) != 18 or not value[:17].isdigit() or not (value[17].isdigit() or value[17] in "Xx"):
        return False
    if value[0] not in "12345678":
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= date.today()


def luhn_ok(value: str) -> bool:
    """ISO/IEC 7812 Luhn check of a card number."""
    if not value.isdigit() or len(value) < 2:
        return False
    total = 0
    for i, c in enumerate(reversed(value)):
        d = int(c)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_plausible(value: str) -> bool:
    """16–19 digits with a card network's first digit (3 Amex/JCB, 4 Visa, 5 Mastercard, 6 UnionPay)."""
    return value.isdigit() and 16 <= len(value) <= 19 and value[0] in "3456"


def expected_length(kind: str, digits: str) -> tuple[int, int]:
    """(smallest complete length, largest possible length) of a value of ``kind`` starting with ``digits``."""
    if kind == PHONE:
        if digits.startswith(("86", "0086", "+86")):
            return 13, 15
        if digits.startswith("0"):
            return 10, 12
        return 11, 11
    if kind == ID_CARD:
        return 18, 18
    if kind == BANK_CARD:
        return 16, 19
    if kind == VERIFICATION_CODE:
        return 4, 8
    if kind == PASSPORT:
        return 8, 9
    return 1, 64


# Plates: province abbreviation, issuing-authority letter (no I/O), then 5 (ordinary) or 6 (new-energy)
# characters; the last may be 挂/学/警/港/澳.
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
PLATE = re.compile(
    rf"(?<![A-Za-z0-9])([{PROVINCES}])[ ]?([A-HJ-NP-Z])[ ·•.\-]?((?:[A-HJ-NP-Z0-9][ ]?){{4,5}}[A-HJ-NP-Z0-9挂学警港澳])"
    r"(?![A-Za-z0-9])"
)
PLATE_HEAD = re.compile(rf"([{PROVINCES}])[ ]?([A-HJ-NP-Z])[ ·•.\-]?((?:[A-HJ-NP-Z0-9][ ]?){{0,4}})\s*$")
PLATE_TAIL = re.compile(r"^[ ·•.\-]?((?:[A-HJ-NP-Z0-9][ ]?){3,6})(?![A-Za-z0-9])")

# Passports and travel permits: a letter (E/G/D/S/P/H/C/K/L/M…) and 7–8 digits; E + letter + 7 digits.
PASSPORT_SHAPE = re.compile(
    r"(?<![A-Za-z0-9])((?:[EGDSPHCKLMNT][ ]?(?:[0-9][ ]?){7}[0-9])|(?:E[ ]?[A-Z][ ]?(?:[0-9][ ]?){6}[0-9]))"
    r"(?![A-Za-z0-9])"
)
PASSPORT_STRONG = re.compile(r"[EGC][ ]?(?:[0-9][ ]?){7}[0-9]|E[ ]?[A-Z][ ]?(?:[0-9][ ]?){6}[0-9]")
# A verification code of letters and digits (spoken one by one or written together), after a code cue.
ALNUM_CODE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z0-9](?:[ ]?[A-Za-z0-9]){3,7})(?![A-Za-z0-9])")
PASSPORT_HEAD = re.compile(r"(?<![A-Za-z0-9])([A-Z])(?:[ ]?[0-9]){0,7}\s*$")

# E-mail: "@" and "." in any spoken form; the local part may be spelled with spaces between letters.
AT = r"(?:@|艾特|爱特|at|小老鼠|圈a|圈儿a)"
DOT = r"(?:\.|点|dot|。)"
TLD = r"(?:com|cn|net|org|edu|gov|cc|io|me|info|top|hk|tw|xyz|vip|co)"
EMAIL_RE = re.compile(
    rf"(?<![A-Za-z0-9._\-])([A-Za-z0-9][A-Za-z0-9._\-]*(?:(?: | ?{DOT} ?)[A-Za-z0-9][A-Za-z0-9._\-]*)*) ?{AT} ?"
    rf"([A-Za-z0-9\-]+(?: ?{DOT} ?[A-Za-z0-9\-]+)*? ?{DOT} ?{TLD}(?: ?{DOT} ?(?:cn|hk))?)(?![A-Za-z0-9])",
    re.IGNORECASE,
)
EMAIL_HEAD = re.compile(r"([A-Za-z0-9][A-Za-z0-9._\-]*(?: [A-Za-z0-9][A-Za-z0-9._\-]*)*)\s*$")
EMAIL_TAIL = re.compile(
    rf"^((?:[A-Za-z0-9._\-]+ ?)*?(?:{AT} ?)?[A-Za-z0-9\-]+(?: ?{DOT} ?[A-Za-z0-9\-]+)*? ?{DOT} ?{TLD}"
    rf"(?: ?{DOT} ?(?:cn|hk))?|[A-Za-z0-9._\-]+(?: [A-Za-z0-9._\-]+)*)(?![A-Za-z0-9])",
    re.IGNORECASE,
)

# Names. Relations and roles that introduce a private person's name (持卡人是我爸 徐海涛, 收件人写 林晓燕).
NAME_CUES: tuple[str, ...] = (
    "我的名字叫", "我的名字是", "名字叫", "名字是", "姓名是", "姓名叫", "姓名", "我叫", "叫做", "我是", "我就是",
    "我这边是", "这边是", "我这里是",
    "本人是", "本人", "收件人写", "收件人是", "收件人", "收货人", "寄件人", "联系人", "持卡人是", "持卡人",
    "户主是", "户主", "开户人", "开户名", "户名是", "户名", "账户名", "车主是", "车主", "投保人", "被保险人",
    "乘机人", "入住人", "取件人", "签收人", "法人", "写", "叫",
)
RELATIONS: tuple[str, ...] = (
    "我老婆", "我老公", "我爱人", "我媳妇", "我太太", "我先生", "我丈夫", "我妻子", "我爸爸", "我爸", "我妈妈",
    "我妈", "我父亲", "我母亲", "我儿子", "我女儿", "我哥哥", "我哥", "我姐姐", "我姐", "我弟弟", "我弟", "我妹妹",
    "我妹", "我爷爷", "我奶奶", "我外婆", "我姥姥", "我朋友", "我同事", "我家人", "我对象", "我男朋友", "我女朋友",
    "我舅舅", "我叔叔", "我姑姑", "我姨妈", "我外公", "我公公", "我婆婆", "我岳父", "我岳母", "我孙子", "我孙女",
    "我侄子", "我外甥", "我伯伯", "我表哥", "我表姐", "我堂哥",
    "老婆", "老公", "爱人", "媳妇", "太太", "丈夫", "妻子", "爸爸", "妈妈", "父亲", "母亲", "儿子", "女儿", "朋友",
    "同事", "家里人", "是", "叫", "的", "为",
)
CALLER_TITLES = ("先生", "女士", "小姐", "太太")
STAFF_TITLES = (
    "经理", "主管", "老师", "师傅", "客服", "专员", "总", "医生", "律师", "警官", "老板", "店长", "科长", "处长",
    "主任", "工", "组长", "顾问", "行长", "柜员", "小哥", "同学", "阿姨", "大爷", "姐", "哥",
)
STAFF_BEFORE = ("客服", "工号", "专员", "经理", "你们", "你们那个", "那个", "业务员", "快递员", "师傅", "柜员")
SELF_REFERENCE = re.compile(
    r"(?:我姓.{1,2}|我是|叫我|本人|我就是|免贵姓.{1,2}|这边是|我这边是|找一下|找|麻烦转|帮我转|转给|转接|请转|转一下|转)\s*$"
)

# Addresses.
ADMIN_SUFFIX = re.compile(r"^.+(?:省|市|区|县|镇|乡|街道|自治区|自治州|州|旗|新区|开发区)$")
ROAD_SUFFIX = re.compile(r"^.+(?:大道|大街|路|街|巷|弄|胡同|公路|里)(?:[东西南北中]|[一二三四五六七八九十0-9]+段)?$")
PLACE_SUFFIX = re.compile(
    r"^.+(?:小区|花园|苑|城|园|村|公寓|大厦|广场|中心|国际|家园|新村|府|湾|庭|庄|屯|组|社区|院|楼|公馆|名邸|华府|山庄"
    r"|大楼|宿舍|新城|嘉园|雅居|别墅|家属院|工业园|科技园|产业园|商城|市场|写字楼|期)$"
)
_N = "[0-9零〇一二两三四五六七八九十百千幺]"
ADDRESS_UNIT = re.compile(
    rf"^(?:[A-Za-z]?{_N}+|[A-Za-z])(?:号院|号楼|号|栋|幢|座|单元|楼|层|室|户|期|组|社|段|弄|区|排|巷)$|^(?:号院|号楼|号|栋|幢|座|单元|楼|层|室|户)$"
)
HOUSE_NUMBER = re.compile(rf"{_N}+(?:号院|号|弄)")
ROOM_NUMBER = re.compile(rf"^[A-Za-z]?{_N}{{1,5}}$")
ADDRESS_CUES: tuple[str, ...] = (
    "地址是", "地址", "住在", "住址", "家在", "家住", "寄到", "送到", "发到", "送货到", "邮寄到", "寄给", "改成",
    "改到", "改为", "位置是",
)

# Words allowed before a continued piece of a value in the next utterance (对 后面是 …).
LEAD_IN = re.compile(
    r"^[\s,，。.、:：]*(?:(?:呃|嗯|啊|额|哦|噢|对|对的|是|好|好的|然后|接着|后面|后面是|往后|往后是|后边|后边是|"
    r"还有|再|就是|那个|最后|最后是|剩下的|剩下|中间|中间是|下面|下面是|继续|接下来|接下来是)[\s,，。.、:：]*)*$"
)
TRAILING = re.compile(
    r"^[\s,，。.、!！?？:：]*(?:(?:呃|嗯|啊|额|哦|噢|对|吧|呢|吗|哈|啦|了|的|是|这样|然后|就这些|就是这个)[\s,，。.、!！?？]*)*$"
)

# Common surnames (a fallback only when LAC does not tag a name right after 我叫 / 名字是).
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭"
    "陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易"
    "乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管"
    "柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟"
    "邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
# Compound surnames (the given name follows them).
COMPOUND_SURNAMES: tuple[str, ...] = (
    "欧阳", "司马", "上官", "诸葛", "令狐", "慕容", "皇甫", "东方", "夏侯", "尉迟", "公孙", "长孙", "宇文", "司徒",
    "端木",
)
# Cues after which a surname and one or two given-name characters are taken as a name without the model: the
# strong self-introductions, and a role noun (…人, …主: 收货人, 登记人, 被保险人, 机主, 车主) with an optional
# 是 / 写 / 叫 / 为, possibly through a relation (持卡人是我爸 …), and 给 (过户给我弟弟 …).
STRONG_NAME_CUE = re.compile(
    r"(?:我叫|我的名字叫|我的名字是|名字叫|名字是|姓名是?|姓名叫|全名叫|全名是|全名|"
    r"(?:[\u4e00-\u9fff]{1,4}人|患者|家属|户名|乘客|学员|业主|房东|租客)"
    r"(?:是|写的?是?|写成|登记的?是|叫|为|姓名是?|名字是?|名字叫|名字|姓名)?|"
    r"[机车户]主(?:是|叫|为)?|给|名字|姓名)\s*$"
)
# Characters that end a given name read without the model (particles, verbs, pronouns, titles, cue words).
GIVEN_STOP = frozenset(
    "的了是在要和跟就我你他她它们吧呢啊吗呀说电手地身卡号证先女小姐太到从去来给把被让对也都还只又与过着得有没不很"
    "这那哪请帮查办问打住姓叫名全现已经刚再先后前上下里边面点个位零幺两"
)
# Stop characters that are also common given names, taken as the name's last character when nothing Han follows
# (王刚 but not 王刚才).
GIVEN_FINAL = frozenset("刚")
# Words that start with a surname character but are places or common words (江苏, 成都, 高新区 …).
NOT_NAMES = re.compile(
    r"^(?:江苏|江西|黄山|周口|常州|温州|金华|武汉|安徽|安庆|成都|高新|高速|高铁|石家庄|马上|白天|明天|万一|平安|华为|"
    r"文件|方便|方面|钱包|钟点|时间|时候|云南|贵州|宁波|宁夏|龙岗|白云|海淀|朱雀|关于|于是|包裹|余额|车子|车辆|"
    r"牛奶|顾客|易购|苏州|常熟|康复|梁山|房子|房间|景区|毛病|程序|席位|全部|全款|严重|任何|林业|谢谢|师傅|"
    r"商品|商家|武侯|史上|田园|叶子|杨浦|徐汇|路上|路口|金额|金卡|和平|齐全|米粉|舒服|曲江|雷锋)"
)
# Particles and punctuation an utterance may end in after a cue.
TRAILING_PARTICLES = re.compile(r"[\s,，。.、:：]*(?:(?:呃|嗯|啊|额|哦|吧|呢)[\s,，。.、:：]*)*$")
