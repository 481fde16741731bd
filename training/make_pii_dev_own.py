# ruff: noqa: E501, E741, RUF059  (data templates: one phrasing per line; short throwaway names)
"""Writes data/pii_dev_own.tsv: PII dev rows written for this project, six industries, each its own source.

Every sentence template, name, number and address here was written for this project (numbers drawn at random
with valid or deliberately invalid checksums; names from common surnames and given-name characters; real road
names with invented house numbers). Nothing is taken from ../shared/eval. Same format as the evaluation sets
plus a ``source`` column (the industry); `speechsvc.evaluation.pii_eval.split_of` puts each source in *tune* or
*holdout* (see data/README.md).

Templates are per industry (each industry phrases things its own way), so the holdout industries' phrasings
are not seen while tuning; the ways of saying digits (幺/两/洞, groups, pauses, fillers, full-width,
Traditional characters, recognizer errors) are shared conventions.

    python training/make_pii_dev_own.py
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data" / "pii_dev_own.tsv"

Seg = str | tuple[str, str]  # plain text, or (TYPE, value text)
Turn = list[Seg]

# ------------------------------------------------------------------ values

ZH = "零一二三四五六七八九"
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "145", "147", "150", "151",
                   "152", "153", "155", "156", "157", "158", "159", "166", "170", "173", "175", "176", "177",
                   "178", "180", "181", "182", "183", "185", "186", "187", "188", "189", "191", "193", "195",
                   "198", "199")
AREA_CODES = ("010", "021", "022", "023", "020", "0755", "0571", "025", "027", "028", "029", "0531", "0532",
              "0591", "0731", "0871", "0451", "0311", "0371", "0898")
ID_AREAS = ("110105", "110108", "120103", "130102", "140105", "210202", "220102", "230103", "310104", "310115",
            "320102", "320583", "330106", "330203", "340104", "350203", "360102", "370102", "370203", "410105",
            "420106", "430104", "440106", "440305", "450103", "500103", "510107", "520102", "530102", "610113",
            "620102", "650102")
CARD_BINS = ("622202", "622848", "621700", "622588", "621226", "622700", "623668", "625965", "436742", "622609",
             "621483", "622262", "625807", "512345", "622155")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢"
COMPOUND = ("欧阳", "司马", "上官", "诸葛", "令狐", "慕容", "皇甫")
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红鹏飞晨辰宇浩然子涵雨欣梓轩怡婷思远佳琪俊凯文博晓东海燕建国志刚淑珍春梅秋菊冬梅立新卫东嘉怡诗琪梦瑶天佑一鸣若曦语桐"
DOTTED = ("阿依古丽·买买提", "艾力·吐尔逊", "古丽米拉·艾山", "迪丽娜尔·阿布都", "买买提·依明", "帕提古丽·热合曼")
SPELLED = {"张": "弓长张", "章": "立早章", "陈": "耳东陈", "李": "木子李", "吴": "口天吴", "林": "双木林",
           "黄": "草头黄", "胡": "古月胡", "许": "言午许", "何": "人可何", "吕": "双口吕", "程": "禾口程",
           "赵": "走肖赵", "刘": "文刀刘", "孙": "子小孙", "杨": "木易杨", "徐": "双人徐", "周": "周末的周",
           "王": "三横王", "郑": "关耳郑", "江": "三点水的江", "汪": "三点水一个王的汪", "姚": "女字旁的姚"}
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁苏浙赣鄂桂甘晋陕吉闽贵粤川琼"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
CITIES = (("广东省", "深圳市", "南山区", ("科技南十二路", "深南大道", "南海大道", "桃园路")),
          ("浙江省", "杭州市", "西湖区", ("文三路", "天目山路", "古墩路", "教工路")),
          ("江苏省", "南京市", "鼓楼区", ("中山北路", "湖南路", "北京西路", "广州路")),
          ("四川省", "成都市", "武侯区", ("人民南路四段", "一环路南三段", "科华北路", "武侯祠大街")),
          ("湖北省", "武汉市", "洪山区", ("珞喻路", "雄楚大道", "关山大道", "民族大道")),
          ("", "北京市", "海淀区", ("中关村大街", "学院路", "知春路", "西直门北大街")),
          ("", "上海市", "浦东新区", ("张杨路", "世纪大道", "浦东南路", "东方路")),
          ("山东省", "青岛市", "市南区", ("香港中路", "山东路", "福州南路", "燕儿岛路")),
          ("福建省", "厦门市", "思明区", ("厦禾路", "湖滨南路", "莲前西路", "嘉禾路")),
          ("陕西省", "西安市", "雁塔区", ("小寨东路", "长安南路", "科技路", "高新路")))
COMPOUNDS = ("阳光花园", "碧桂园", "万科城", "锦绣家园", "翠苑小区", "金地名郡", "保利香槟国际", "绿城桂花园",
             "华润二十四城", "龙湖春江郦城", "中海国际社区", "天鹅湖小区")
MAIL_HOSTS = (("163", "com"), ("126", "com"), ("qq", "com"), ("gmail", "com"), ("sina", "com"), ("outlook", "com"),
              ("foxmail", "com"), ("139", "com"), ("yeah", "net"), ("hotmail", "com"))
MAIL_USERS = ("wangjun", "lixiaomei", "zhanghao88", "chen_yu", "liu.fang", "sunny2019", "tianmi", "xiaoyu_sz",
              "huangwei", "zhou123", "mike.lin", "annie_w", "jiangtao", "yang0618", "feifei", "gao_peng")


def luhn_digit(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def id_check(body: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


class Values:
    """Random values; every call draws a new one (never the same number twice in the file)."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng
        self.used: set[str] = set()

    def _fresh(self, make: Callable[[], str]) -> str:
        while True:
            v = make()
            if v not in self.used:
                self.used.add(v)
                return v

    def digits(self, n: int) -> str:
        return "".join(self.r.choice("0123456789") for _ in range(n))

    def mobile(self) -> str:
        return self._fresh(lambda: self.r.choice(MOBILE_PREFIXES) + self.digits(8))

    def landline(self) -> str:
        return self._fresh(lambda: (a := self.r.choice(AREA_CODES)) + self.r.choice("2345678") + self.digits(7 if len(a) == 3 else 6 + self.r.randint(0, 1)))

    def id_card(self) -> str:
        def make() -> str:
            body = (self.r.choice(ID_AREAS) + str(self.r.randint(1955, 2004)) + f"{self.r.randint(1, 12):02d}"
                    + f"{self.r.randint(1, 28):02d}" + self.digits(3))
            check = id_check(body)
            if self.r.random() < 0.2:  # misread check digit
                check = self.r.choice([c for c in "0123456789" if c != check])
            return body + check
        return self._fresh(make)

    def card(self) -> str:
        def make() -> str:
            n = self.r.choice((16, 16, 19, 19, 18))
            body = self.r.choice(CARD_BINS) + self.digits(n - 7)
            return body + (luhn_digit(body) if self.r.random() < 0.85 else self.r.choice("0123456789"))
        return self._fresh(make)

    def code(self, n: int | None = None) -> str:
        return self._fresh(lambda: self.digits(n or self.r.choice((4, 6, 6, 6, 5, 8))))

    def alnum_code(self) -> str:
        return self._fresh(lambda: "".join(self.r.choice("ABCDEFGHJKMNPQRSTUVWXYZ23456789") for _ in range(self.r.choice((4, 5, 6)))))

    def passport(self) -> str:
        def make() -> str:
            kind = self.r.random()
            if kind < 0.55:
                return "E" + self.digits(8)
            if kind < 0.7:
                return "E" + self.r.choice("ABCDEFGHJKLMN") + self.digits(7)
            if kind < 0.85:
                return "G" + self.digits(8)
            return "C" + self.digits(8)  # 港澳通行证
        return self._fresh(make)

    def plate(self, new_energy: bool | None = None) -> tuple[str, str, str]:
        """(province, letter, rest) of a plate: 5 characters, or 6 for a new-energy plate."""
        ne = self.r.random() < 0.35 if new_energy is None else new_energy
        def make() -> str:
            p, l = self.r.choice(PROVINCES), self.r.choice(PLATE_LETTERS)
            if ne:
                rest = self.r.choice("DF") + self.digits(5) if self.r.random() < 0.7 else self.digits(5) + self.r.choice("DF")
            else:
                rest = "".join(self.r.choice("0123456789" * 3 + "ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(5))
            return p + l + rest
        v = self._fresh(make)
        return v[0], v[1], v[2:]

    def name(self) -> tuple[str, str]:
        """(surname, full name)."""
        def make() -> str:
            s = self.r.choice(COMPOUND) if self.r.random() < 0.06 else self.r.choice(SURNAMES)
            g = "".join(self.r.choice(GIVEN) for _ in range(self.r.choice((1, 2, 2, 2))))
            return s + "|" + g
        s, g = self._fresh(make).split("|")
        return s, s + g

    def spelled_name(self) -> tuple[str, str, str]:
        def make() -> str:
            s = self.r.choice(list(SPELLED))
            return s + "|" + "".join(self.r.choice(GIVEN) for _ in range(self.r.choice((1, 2, 2))))
        s, g = self._fresh(make).split("|")
        return s, SPELLED[s], s + g

    def email(self) -> str:
        user = self.r.choice(MAIL_USERS) + (str(self.r.randint(1, 99)) if self.r.random() < 0.4 else "")
        host, tld = self.r.choice(MAIL_HOSTS)
        at = self.r.choice(("@", " 艾特 ", " at ", "艾特", " 小老鼠 "))
        dot = self.r.choice((".", " 点 ", "点", " dot "))
        if self.r.random() < 0.2:
            user = " ".join(user)  # letters spelled one by one
        return self._fresh(lambda: f"{user}{at}{host}{dot}{tld}".strip())

    def address(self, depth: str = "full") -> str:
        prov, city, dist, roads = self.r.choice(CITIES)
        road = self.r.choice(roads)
        num = self.r.randint(1, 999)
        num_s = str(num) if self.r.random() < 0.5 else zh_number(num)
        head = (prov if self.r.random() < 0.3 else "") + city + dist
        kind = self.r.random()
        if kind < 0.35:
            return self._fresh(lambda: f"{head}{road}{num_s}号")
        b, u, room = self.r.randint(1, 30), self.r.randint(1, 6), self.r.randint(1, 33) * 100 + self.r.randint(1, 4)
        comp = self.r.choice(COMPOUNDS)
        if kind < 0.7:
            return self._fresh(lambda: f"{head}{road}{num_s}号{comp}{b}栋{u}单元{room}")
        return self._fresh(lambda: f"{city}{dist}{comp}{b}号楼{u}单元{room}室")


def zh_number(n: int) -> str:
    """Value reading of 1–999 (三百九十八)."""
    out = ""
    h, t, o = n // 100, n // 10 % 10, n % 10
    if h:
        out += ZH[h] + "百"
    if t:
        out += ("" if (t == 1 and not h) else ZH[t]) + "十"
    elif h and o:
        out += "零"
    if o:
        out += ZH[o]
    return out


# ------------------------------------------------------------------ how digits are said


class Say:
    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    def zh(self, d: str, yao: float = 0.7, liang: float = 0.2, dong: float = 0.0) -> str:
        out = []
        for c in d:
            if c == "1":
                out.append("幺" if self.r.random() < yao else "一")
            elif c == "2":
                out.append("两" if self.r.random() < liang else "二")
            elif c == "0":
                out.append("洞" if self.r.random() < dong else self.r.choice("零零零〇"))
            elif c.isdigit():
                out.append(ZH[int(c)])
            else:
                out.append(c)
        return "".join(out)

    def groups(self, d: str, sizes: tuple[int, ...]) -> list[str]:
        out, i = [], 0
        for s in sizes:
            if i >= len(d):
                break
            out.append(d[i : i + s])
            i += s
        if i < len(d):
            out.append(d[i:])
        return out

    def number(self, d: str, sizes: tuple[int, ...] = (4, 4, 4, 4, 4), style: str | None = None) -> str:
        """A digit string in one of the dictation styles."""
        style = style or self.r.choice(("arabic", "grouped", "zh", "zh_grouped", "filler", "spaced", "mixed",
                                        "comma", "radio", "fullwidth", "repeat"))
        g = self.groups(d, sizes)
        if style == "arabic":
            return d
        if style == "grouped":
            return self.r.choice((" ", "-", " ")).join(g)
        if style == "zh":
            return self.zh(d)
        if style == "zh_grouped":
            return " ".join(self.zh(x) for x in g)
        if style == "filler":
            parts = [self.zh(x) if self.r.random() < 0.6 else x for x in g]
            out = parts[0]
            for p in parts[1:]:
                out += self.r.choice((" 呃 ", " 嗯 ", " ", " 呃", "，", " 那个 ")) + p
            return out
        if style == "spaced":
            return " ".join(d)
        if style == "mixed":
            return " ".join(x if i % 2 == 0 else self.zh(x) for i, x in enumerate(g))
        if style == "comma":
            return "，".join(g)
        if style == "radio":
            return " ".join(self.zh(x, yao=1.0, liang=0.8, dong=0.8) for x in g)
        if style == "fullwidth":
            return " ".join("".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in x) for x in g)
        if style == "repeat":
            out, i = "", 0
            while i < len(d):
                if i + 1 < len(d) and d[i] == d[i + 1] and d[i].isdigit() and self.r.random() < 0.8:
                    out += self.r.choice(("两个", "两个")) + ZH[int(d[i])]
                    i += 2
                else:
                    out += self.zh(d[i])
                    i += 1
            return out
        raise ValueError(style)

    def phone(self, d: str, style: str | None = None) -> str:
        sizes = (3, 4, 4) if d.startswith("1") else ((3, 4, 4) if len(d) == 11 and d[:3] in ("010", "021", "022", "020", "023", "025", "027", "028", "029") else (4, 4, 4))
        return self.number(d, sizes, style)

    def id_card(self, d: str, style: str | None = None) -> str:
        style = style or self.r.choice(("arabic", "grouped", "zh", "zh_grouped", "filler", "mixed", "spaced", "radio"))
        out = self.number(d[:17], (6, 8, 3), style if style != "grouped" else "arabic") if style != "grouped" else " ".join(self.groups(d[:17], (6, 8, 3)))
        last = d[17]
        if last == "X":
            last = self.r.choice(("X", "x", "叉", "艾克斯"))
        elif style in ("zh", "zh_grouped", "filler", "mixed", "radio") and self.r.random() < 0.7:
            last = self.zh(last)
        sep = " " if style in ("spaced", "grouped", "zh_grouped") else ""
        return out + sep + last

    def plate(self, p: str, letter: str, rest: str) -> str:
        style = self.r.choice(("plain", "dot", "space", "spoken", "spaced", "plain"))
        if style == "plain":
            return p + letter + rest
        if style == "dot":
            return p + letter + "·" + rest
        if style == "space":
            return p + letter + " " + rest
        if style == "spoken":
            return p + letter + " " + "".join(self.zh(c, yao=1.0, liang=0.5, dong=0.3) if c.isdigit() else c for c in rest)
        return p + " " + letter + " " + " ".join(rest)

    def passport(self, v: str) -> str:
        style = self.r.choice(("plain", "space", "zh", "spaced", "grouped", "plain"))
        head = v[:2] if v[1].isalpha() else v[:1]
        body = v[len(head):]
        if style == "plain":
            return v
        if style == "space":
            return head + " " + body
        if style == "zh":
            return head + " " + self.zh(body)
        if style == "spaced":
            return " ".join(v)
        return head + " " + " ".join(self.groups(body, (4, 4)))

    def code(self, v: str) -> str:
        if not v.isdigit():
            return self.r.choice((v, " ".join(v)))
        return self.number(v, (3, 3, 2), self.r.choice(("arabic", "zh", "spaced", "zh_grouped", "radio", "arabic", "mixed")))


TRAD = str.maketrans({"机": "機", "号": "號", "码": "碼", "证": "證", "银": "銀", "卡": "卡", "验": "驗", "车": "車",
                      "牌": "牌", "护": "護", "照": "照", "电": "電", "话": "話", "址": "址", "邮": "郵", "箱": "箱",
                      "们": "們", "这": "這", "个": "個", "给": "給", "还": "還", "说": "說", "请": "請", "报": "報",
                      "发": "發", "单": "單", "联": "聯", "系": "係", "对": "對", "动": "動", "态": "態", "区": "區",
                      "东": "東", "门": "門", "业": "業", "务": "務", "时": "時", "间": "間", "后": "後", "儿": "兒"})


def trad(s: str) -> str:
    return s.translate(TRAD)


# ------------------------------------------------------------------ rows


class Writer:
    def __init__(self, source: str, seed: int) -> None:
        self.source = source
        self.r = random.Random(seed)
        self.v = Values(self.r)
        self.say = Say(self.r)
        self.calls: list[tuple[list[Turn], str]] = []

    def call(self, turns: list[Turn], note: str) -> None:
        self.calls.append((turns, note))

    def one(self, *segs: Seg, note: str = "") -> None:
        self.call([list(segs)], note)

    def rows(self, start_id: int) -> list[list[str]]:
        out = []
        n = start_id
        for c, (turns, note) in enumerate(self.calls, 1):
            call_id = f"{self.source[:3]}{c:03d}"
            for t, turn in enumerate(turns, 1):
                text = "".join(s if isinstance(s, str) else s[1] for s in turn)
                ents = [{"type": s[0], "text": s[1]} for s in turn if not isinstance(s, str)]
                for e in ents:
                    if text.count(e["text"]) != 1:
                        raise ValueError(f"{e['text']!r} is not once in {text!r}")
                    if e["text"] != e["text"].strip():
                        raise ValueError(f"span with outer space {e['text']!r}")
                row_note = note
                if len(turns) > 1 and ents and "split" in note:
                    row_note = f"{note} part {sum(1 for x in turns[:t] if any(not isinstance(s, str) for s in x))}/{sum(1 for x in turns if any(not isinstance(s, str) for s in x))}"
                out.append([f"own-{n:04d}", call_id, str(t), text, json.dumps(ents, ensure_ascii=False), row_note, self.source])
                n += 1
        return out


def pick(w: Writer, *options: str) -> str:
    return w.r.choice(options)


# ---- shared pieces of phrasing (each industry calls them with its own words)


def split_number(w: Writer, typ: str, digits: str, cue_turn: str, parts: int, sizes: tuple[int, ...]) -> None:
    """A value dictated over several utterances; the cue at the start of the first."""
    g = w.say.groups(digits, sizes)
    cut = sorted(w.r.sample(range(1, len(g)), min(parts - 1, len(g) - 1)))
    chunks = ["".join(g[a:b]) for a, b in zip([0, *cut], [*cut, len(g)], strict=True)]
    style = w.r.choice(("arabic", "zh", "zh_grouped", "radio", "mixed"))
    turns: list[Turn] = []
    for i, ch in enumerate(chunks):
        said = w.say.number(ch, (4, 4, 4), style if style != "mixed" else ("arabic" if i % 2 else "zh"))
        if i == 0:
            turns.append([cue_turn, (typ, said)])
        else:
            lead = w.r.choice(("", "", "然后 ", "嗯 ", "后面是 ", "接着是"))
            turns.append([lead, (typ, said)])
        if i == 0 and w.r.random() < 0.25 and len(chunks) > 1:
            turns.append([w.r.choice(("稍等我看一下", "等一下啊", "我找一下", "你别急我翻一下"))])
    w.call(turns, f"split {typ}")


# ------------------------------------------------------------------ industries


def bank(w: Writer) -> None:
    for _ in range(6):
        d = w.v.mobile()
        w.one(pick(w, "我预留的手机号是", "银行预留手机 ", "绑定的手机号码是 ", "手机号改成"), ("PHONE", w.say.phone(d)), pick(w, "", " 麻烦帮我核对一下", " 对的", "了"), note="phone")
    for _ in range(6):
        d = w.v.card()
        w.one(pick(w, "我要挂失这张卡 卡号", "储蓄卡卡号是", "信用卡号码", "借记卡 ", "转到这个账户 "), ("BANK_CARD", w.say.number(d)), pick(w, "", " 工商银行的", " 户名是我本人", ""), note="card")
    for _ in range(3):
        d = w.v.card()
        w.one(pick(w, "就是尾号", "我那张卡尾号是 ", "卡号后四位"), ("BANK_CARD", w.say.number(d[-4:], (4,), w.r.choice(("arabic", "zh")))), pick(w, "的那张储蓄卡", " 被冻结了", ""), note="card piece")
    for _ in range(5):
        d = w.v.id_card()
        w.one(pick(w, "开户用的身份证是", "身份证号 ", "证件号码是", "我的身份證號碼 "), ("ID_CARD", w.say.id_card(d)), note="id")
    for _ in range(2):
        d = w.v.id_card()
        six = w.r.random() < 0.5
        w.one("身份证后六位" if six else "证件号最后四位是", ("ID_CARD", w.say.number(d[-6:] if six else d[-4:], (6,), "zh")), note="id piece")
    for _ in range(5):
        c = w.v.code()
        w.one(pick(w, "手机银行的验证码是", "动态码 ", "收到的短信验证码", "刚收到的校验码是 "), ("VERIFICATION_CODE", w.say.code(c)), pick(w, "", " 你们那边能看到吗", ""), note="code")
    for _ in range(6):
        s, n = w.v.name()
        form = w.r.random()
        if form < 0.3:
            w.one(pick(w, "我叫", "我是", "持卡人 ", "户名是"), ("NAME", n), pick(w, " 要查一下账单", " 卡被锁了", ""), note="name")
        elif form < 0.6:
            w.one(pick(w, "账户名写的是", "收款人是我爱人 ", "开户人是我母亲 "), ("NAME", n), note="name, third party")
        else:
            w.one(pick(w, "我姓", "免贵姓"), s, " 叫", ("NAME", n), note="name after surname")
    for _ in range(3):
        s, spelled, n = w.v.spelled_name()
        w.one("我姓", s, " ", spelled, " 全名叫", ("NAME", n), note="spelled surname")
    for _ in range(2):
        s, _n = w.v.name()
        w.one("我是", ("NAME", s + pick(w, "先生", "女士")), " 之前打过电话", note="caller title")
    w.one(("EMAIL", w.v.email()), " 这个邮箱收电子账单", note="email")
    w.one("对账单发到邮箱 ", ("EMAIL", w.v.email()), note="email")
    w.one("寄信用卡的地址是", ("ADDRESS", w.v.address()), note="address")
    w.one("账单地址改成 ", ("ADDRESS", w.v.address()), note="address")
    w.one("验证吗是", ("VERIFICATION_CODE", w.say.code(w.v.code(6))), note="code, homophone cue (吗 for 码)")
    w.one("银航卡号", ("BANK_CARD", w.v.card()), "麻烦查下", note="card, homophone cue, glued")
    w.one("手机好是", ("PHONE", w.say.phone(w.v.mobile(), "arabic")), note="phone, homophone cue (好 for 号)")
    # split values
    split_number(w, "BANK_CARD", w.v.card(), "卡号是", 3, (4, 4, 4, 4, 3))
    split_number(w, "PHONE", w.v.mobile(), "手机号", 2, (3, 4, 4))
    split_number(w, "ID_CARD", w.v.id_card(), "身份证号码是", 2, (6, 8, 4))
    s, n = w.v.name()
    w.call([["持卡人姓名是"], [("NAME", n)]], "split NAME")
    # negatives
    neg = [
        "卡里余额还有一万两千三百四十五块六", "这个月账单是三千二百一十八元", "信用额度五万 能不能提到八万",
        "年利率百分之三点八五 对吧", "我在二零二三年十月十五号开的户", "还款日是每个月二十五号",
        "你们95588一直打不通", "交易流水号是 2024 0315 0918 2233 4455", "我上周转了两笔 一笔八百一笔一千五",
        "分期分十二期 每期手续费零点六", "我姓王 不是黄", "积分还有一万两千分", "下午三点四十左右的交易",
        "客服小张说三个工作日", "网点在人民路那边 几点关门", "这个月的年费六百八十元能免吗", "密码输错了三次",
        "贷款合同编号 HT20240518007", "我的卡丢了还没补", "验证码一直收不到",
    ]
    for t in neg:
        w.one(t, note="negative")


def telecom(w: Writer) -> None:
    for _ in range(8):
        d = w.v.mobile() if w.r.random() < 0.8 else w.v.landline()
        w.one(pick(w, "我要查一下", "帮我看下", "宽带绑定的是", "副卡号码", "给这个号 ", "我家座机 "), ("PHONE", w.say.phone(d)), pick(w, " 的话费", " 这个号码", " 欠费停机了", "", " 为什么扣钱"), note="phone")
    for _ in range(3):
        d = w.v.mobile()
        cc = pick(w, "+86 ", "0086")
        w.one(pick(w, "电话号码是", "号码是 "), ("PHONE", cc + w.say.phone(d, "grouped")), note="phone with country code (in the span)")
    for _ in range(2):
        d = w.v.mobile()
        w.one(pick(w, "我手機是", "電話號碼 "), ("PHONE", w.say.phone(d)), note="phone traditional cue")
    for _ in range(4):
        d = w.v.id_card()
        w.one(pick(w, "实名登记的身份证", "机主身份证号是", "身份证 "), ("ID_CARD", w.say.id_card(d)), note="id")
    w.one("身份证后四位 ", ("ID_CARD", w.say.number(w.v.id_card()[-4:], (4,), "zh")), note="id piece")
    for _ in range(6):
        c = w.v.code() if w.r.random() < 0.7 else w.v.alnum_code()
        w.one(pick(w, "补卡的验证码", "携号转网的授权码是", "短信里的动态码是", "验证码是", "校验码 "), ("VERIFICATION_CODE", w.say.code(c)), note="code")
    for _ in range(6):
        s, n = w.v.name()
        w.one(pick(w, "机主是", "我叫", "登记人", "过户给我弟弟 ", "我的名字是"), ("NAME", n), pick(w, "", " 你查一下", " 现在要过户", ""), note="name")
    for _ in range(2):
        s, spelled, n = w.v.spelled_name()
        w.one("机主叫", ("NAME", n), " ", spelled, " 的", s, note="name with spelled surname")
    w.one("你就叫我", ("NAME", w.v.name()[0] + "女士"), "就行", note="caller title")
    for _ in range(3):
        w.one(pick(w, "装宽带的地址是", "光猫要寄到", "师傅上门地址 "), ("ADDRESS", w.v.address()), note="address")
    w.one("发票发到邮箱", ("EMAIL", w.v.email()), note="email")
    d = w.v.mobile()
    w.one("号码是", ("PHONE", w.say.zh(d).replace("幺", "要")), note="phone, 幺 heard as 要")
    w.one("身份正号", ("ID_CARD", w.v.id_card()), note="id, homophone cue (正 for 证)")
    split_number(w, "PHONE", w.v.mobile(), "要转移的号码是", 3, (3, 4, 4))
    split_number(w, "ID_CARD", w.v.id_card(), "身份证", 3, (6, 4, 4, 4))
    code = w.v.code(6)
    w.call([["验证码刚收到了"], [("VERIFICATION_CODE", w.say.code(code))]], "split VERIFICATION_CODE")
    neg = [
        "我打10086好几次了", "套餐是一百二十八元的", "这个月流量用了三十五个G", "宽带是三百兆的", "工单号 2405 1800 3321",
        "上个月话费一百九十九块", "师傅说明天上午九点到十一点上门", "国际漫游一天二十五块", "合约期二十四个月",
        "我的号码没变", "信号只有一格", "我用的是华为Mate60 Pro", "你们营业厅在中山路", "月底三十一号之前办",
        "打了三次12300投诉", "IMEI是 8665 3205 1234 567", "客服工号 10452", "光猫型号是 HG8145V5", "四百块的押金退了没有",
        "我要办那个五十九元套餐", "验证码过期了吗 才五分钟",
    ]
    for t in neg:
        w.one(t, note="negative")


def ecommerce(w: Writer) -> None:
    for _ in range(7):
        d = w.v.mobile()
        w.one(pick(w, "收货人电话", "联系电话写的是", "下单的手机号", "给我打", "手机"), ("PHONE", w.say.phone(d)), pick(w, "", " 别打错了", " 就行", ""), note="phone")
    for _ in range(7):
        s, n = w.v.name()
        w.one(pick(w, "收货人", "收货人写", "收件人是我老公 ", "下单人叫", "我叫"), ("NAME", n), pick(w, "", " 东西一直没到", " 帮我改一下"), note="name")
    for _ in range(2):
        n = w.r.choice(DOTTED)
        w.one("收货人是", ("NAME", n), note="dotted name")
    for _ in range(8):
        w.one(pick(w, "地址改到", "收货地址是", "送到", "寄到 ", "麻烦送到"), ("ADDRESS", w.v.address()), pick(w, "", " 谢谢", " 放门口就行"), note="address")
    for _ in range(3):
        d = w.v.card()
        w.one(pick(w, "退款退到", "钱打到我这张卡 ", "退到银行卡"), ("BANK_CARD", w.say.number(d)), note="card")
    for _ in range(4):
        c = w.v.code()
        w.one(pick(w, "登录的验证码是", "付款验证码", "验证码"), ("VERIFICATION_CODE", w.say.code(c)), pick(w, "", " 我收到了"), note="code")
    for _ in range(3):
        w.one(pick(w, "我的邮箱是", "账号邮箱", "邮箱"), ("EMAIL", w.v.email()), note="email")
    for _ in range(2):
        d = w.v.id_card()
        w.one("跨境购要身份证 ", ("ID_CARD", w.say.id_card(d)), note="id")
    w.one("收货人电话", ("PHONE", w.v.mobile()), "收货人", ("NAME", w.v.name()[1]), note="phone and name glued, no punctuation")
    w.one("驗證碼", ("VERIFICATION_CODE", w.v.code(6)), note="code, traditional cue")
    s, n = w.v.name()
    w.call([["收件人写"], [("NAME", n), " 就是我"]], "split NAME")
    a = w.v.address()
    w.call([["地址是", ("ADDRESS", a[: len(a) // 2])], [("ADDRESS", a[len(a) // 2 :])]], "split ADDRESS")
    split_number(w, "PHONE", w.v.mobile(), "收货手机", 2, (3, 4, 4))
    neg = [
        "订单号 3829 1047 5562 9018 337", "订单尾号是 8821", "退货单号 TH202405180032", "这件衣服一百九十九", "优惠券满三百减五十",
        "我买了两件 一件L码一件XL码", "快递单号 SF1402 8837 6625", "五月二十号下的单", "物流显示在上海转运中心", "客服电话400-820-8820",
        "给了个差评 一星", "运费八块钱", "尺码是四十二码的", "积分抵了二十块", "iPhone 15 Pro 256G", "七天无理由退货",
        "邮编是 310012", "我在北京朝阳区这边", "商品编号 100023456789", "发票抬头写公司 税号 91330106MA2H3K5X7Q",
        "李宁的鞋子码数不对",
    ]
    for t in neg:
        w.one(t, note="negative")


def insurance(w: Writer) -> None:
    for _ in range(6):
        d = w.v.mobile()
        w.one(pick(w, "报案人电话", "投保时留的手机", "理赔员可以打", "我的联系电话是 "), ("PHONE", w.say.phone(d)), pick(w, "", " 找我", " 随时可以打"), note="phone")
    for _ in range(6):
        d = w.v.id_card()
        w.one(pick(w, "被保险人身份证", "投保人证件号码", "我身份证号码是", "被保人身份證 "), ("ID_CARD", w.say.id_card(d)), note="id")
    for _ in range(5):
        d = w.v.card()
        w.one(pick(w, "理赔款打到", "赔款账户 ", "收款银行卡", "保费从这张卡扣 "), ("BANK_CARD", w.say.number(d)), note="card")
    for _ in range(2):
        d = w.v.card()
        w.one("扣保费的是尾号", ("BANK_CARD", w.say.number(d[-4:], (4,), "zh")), "那张卡", note="card piece")
    for _ in range(7):
        s, n = w.v.name()
        w.one(pick(w, "被保险人是我父亲 ", "投保人", "出险的是我女儿", "受益人写", "我叫", "驾驶员是"), ("NAME", n), pick(w, "", " 要报案", " 对"), note="name")
    for _ in range(2):
        s, spelled, n = w.v.spelled_name()
        w.one("投保人姓", s, " ", spelled, " 名字", ("NAME", n), note="spelled surname")
    w.one("您好 我是", ("NAME", w.v.name()[0] + "先生"), " 车险报案", note="caller title")
    for _ in range(7):
        p, l, rest = w.v.plate()
        w.one(pick(w, "车牌号", "出险车辆是", "我的车牌", "对方车牌是", "车是"), ("LICENSE_PLATE", w.say.plate(p, l, rest)), pick(w, "", " 在高速上追尾了", " 的那辆"), note="plate")
    for _ in range(4):
        v = w.v.passport()
        w.one(pick(w, "境外旅游险要填护照 ", "护照号码", "被保险人护照是"), ("PASSPORT", w.say.passport(v)), note="passport")
    for _ in range(4):
        c = w.v.code()
        w.one(pick(w, "电子保单的验证码", "验证码", "收到的确认码是"), ("VERIFICATION_CODE", w.say.code(c)), note="code")
    w.one("保单寄到", ("ADDRESS", w.v.address()), note="address")
    w.one("出险地点在", ("ADDRESS", w.v.address()), note="address")
    w.one("资料发我邮箱", ("EMAIL", w.v.email()), note="email")
    _p, l, rest = w.v.plate(new_energy=False)
    w.one("车牌号是", ("LICENSE_PLATE", "越" + l + rest), note="plate, 粤 heard as 越")
    w.one("車牌號", ("LICENSE_PLATE", "".join(w.v.plate())), note="plate, traditional cue")
    w.one("驗證碼是", ("VERIFICATION_CODE", w.say.code(w.v.code())), note="code, traditional cue")
    w.one("被保险人身分证", ("ID_CARD", w.say.id_card(w.v.id_card())), note="id, homophone cue (分 for 份)")
    split_number(w, "ID_CARD", w.v.id_card(), "被保人身份证", 3, (6, 4, 4, 4))
    split_number(w, "BANK_CARD", w.v.card(), "理赔账户是", 2, (4, 4, 4, 4, 3))
    p, l, rest = w.v.plate()
    w.call([["车牌是", ("LICENSE_PLATE", p + l)], [("LICENSE_PLATE", rest)]], "split LICENSE_PLATE")
    neg = [
        "保单号 PDAA2024 3301 0000 1234", "保费一年三千六百五十元", "报案号是 9051 2024 0518 3321", "出险时间是昨天晚上八点半",
        "理赔金额两万三千块", "我打过95519了", "交强险九百五十块", "等待期九十天", "免赔额五百", "保额五十万",
        "二零二四年六月一号到期", "车子是二零一九年买的", "定损员小李说要等三天", "我身份证丢了 能报案吗", "医院住了七天",
        "门诊发票一共十二张", "保险条款第五条", "续保打八五折",
    ]
    for t in neg:
        w.one(t, note="negative")


def logistics(w: Writer) -> None:
    for _ in range(7):
        d = w.v.mobile()
        w.one(pick(w, "收件人手机号", "寄件人电话", "让快递员打", "你让司机联系", "电话"), ("PHONE", w.say.phone(d)), pick(w, "", " 送之前打个电话", " 就可以"), note="phone")
    for _ in range(2):
        d = w.v.mobile()
        w.one("快递员的手机是 ", ("PHONE", w.say.phone(d)), " 一直打不通", note="courier phone")
    for _ in range(7):
        s, n = w.v.name()
        w.one(pick(w, "收件人", "寄件人是", "签收人写的", "这个件是给", "代收人"), ("NAME", n), pick(w, "", " 的件", " 但是我没签收"), note="name")
    for _ in range(2):
        s, spelled, n = w.v.spelled_name()
        w.one("收件人是", ("NAME", n), " ", spelled, note="spelled surname")
    for _ in range(9):
        w.one(pick(w, "派送地址是", "帮我改派到", "寄到", "取件地址 ", "我在"), ("ADDRESS", w.v.address()), pick(w, "", " 这边", " 门卫室"), note="address")
    for _ in range(5):
        p, l, rest = w.v.plate()
        w.one(pick(w, "货车车牌", "司机开的是", "提货的车是 ", "车牌号码是"), ("LICENSE_PLATE", w.say.plate(p, l, rest)), note="plate")
    for _ in range(3):
        c = w.v.code()
        w.one(pick(w, "签收验证码是", "收到的签收码 验证码", "验证码"), ("VERIFICATION_CODE", w.say.code(c)), note="code")
    for _ in range(2):
        d = w.v.id_card()
        w.one("寄件实名登记的身份证 ", ("ID_CARD", w.say.id_card(d)), note="id")
    w.one("到付运费退到卡里 ", ("BANK_CARD", w.say.number(w.v.card())), note="card")
    s, n = w.v.name()
    w.call([["收件人是"], [("NAME", n)], ["电话是", ("PHONE", w.say.phone(w.v.mobile()))]], "split NAME")
    w.one("收件人电话", ("PHONE", w.say.zh(w.v.mobile()).replace("幺", "要")), note="phone, 幺 heard as 要")
    w.one("收件人", ("NAME", w.v.name()[1]), "电话", ("PHONE", w.v.mobile()), "地址", ("ADDRESS", w.v.address()), note="three values, no punctuation")
    split_number(w, "PHONE", w.v.mobile(), "收件电话", 3, (3, 4, 4))
    a = w.v.address()
    cut = a.index("区") + 1
    w.call([["地址是", ("ADDRESS", a[:cut])], ["呃 ", ("ADDRESS", a[cut:])]], "split ADDRESS")
    neg = [
        "运单号 7785 2210 3349 012", "取件码 5-2-1408", "取件码是 三八二六", "包裹重五公斤", "运费十二块", "预计明天下午三点前送达",
        "快递柜在三号门", "邮编 518057", "中转到了武汉转运中心", "我在广州白云区这边", "打了95311没人接", "格口号是二十三",
        "单号尾号 6620", "十月三号寄出的", "冷链运输要加二十块", "一共三个箱子", "派件员小王说明天", "我住1802",
        "物流单号 YT 7512 8890 3324",
    ]
    for t in neg:
        w.one(t, note="negative")


def travel(w: Writer) -> None:
    for _ in range(8):
        v = w.v.passport()
        w.one(pick(w, "乘机人护照号", "护照号码是", "我的护照", "港澳通行证号码", "办签证用的护照 "), ("PASSPORT", w.say.passport(v)), pick(w, "", " 下个月到期", " 帮我核对一下"), note="passport")
    for _ in range(7):
        s, n = w.v.name()
        w.one(pick(w, "乘机人", "入住人写", "订票人叫", "同行的是我太太 ", "我叫"), ("NAME", n), pick(w, "", " 一共两位", " 航班改签"), note="name")
    w.one("乘机人 ", ("NAME", w.r.choice(DOTTED)), note="dotted name")
    for _ in range(2):
        s, spelled, n = w.v.spelled_name()
        w.one("我叫", ("NAME", n), " ", spelled, note="spelled surname")
    w.one("我是", ("NAME", w.v.name()[0] + "女士"), " 订了明天的房间", note="caller title")
    for _ in range(6):
        d = w.v.mobile()
        w.one(pick(w, "订票手机", "入住人电话", "联系手机", "乘机人手机号"), ("PHONE", w.say.phone(d)), note="phone")
    for _ in range(4):
        d = w.v.id_card()
        w.one(pick(w, "高铁票用的身份证", "乘车人证件号", "入住登记身份证"), ("ID_CARD", w.say.id_card(d)), note="id")
    for _ in range(5):
        c = w.v.code()
        w.one(pick(w, "订单确认的验证码", "验证码", "登录动态码", "值机验证码是"), ("VERIFICATION_CODE", w.say.code(c)), note="code")
    for _ in range(2):
        w.one(pick(w, "行程单发到", "确认邮件发到"), ("EMAIL", w.v.email()), note="email")
    w.one("租车的车牌是", ("LICENSE_PLATE", w.say.plate(*w.v.plate())), note="plate")
    w.one("接机的车 ", ("LICENSE_PLATE", w.say.plate(*w.v.plate())), " 在几号口", note="plate")
    w.one("退款到这张信用卡 ", ("BANK_CARD", w.say.number(w.v.card())), note="card")
    w.one("发票寄到", ("ADDRESS", w.v.address()), note="address")
    v = w.v.passport()
    w.call([["护照号是 ", ("PASSPORT", v[:1] + " " + v[1:5])], [("PASSPORT", w.say.zh(v[5:]))]], "split PASSPORT")
    w.one("護照號碼", ("PASSPORT", w.v.passport()), note="passport, traditional cue")
    w.one("我叫", ("NAME", w.v.name()[1]), "手机", ("PHONE", w.v.mobile()), note="name and phone glued")
    split_number(w, "PHONE", w.v.mobile(), "联系人电话", 2, (3, 4, 4))
    neg = [
        "航班号是 CA1831", "座位是三十二A", "高铁G1234 下午两点十分", "房间号1206", "订单号 1390 2275 6618 4490", "一晚上四百八",
        "会员号 8800 1234 5678", "行李额是二十三公斤", "十一月五号入住 七号退房", "东航95530", "值机柜台在F区",
        "改签费一百五", "我在成都双流机场", "里程积分还有一万二", "护照丢了怎么办", "早餐七点到十点", "提前两个小时到",
        "酒店在西湖边上", "票价一千二百八十元",
    ]
    for t in neg:
        w.one(t, note="negative")


def healthcare(w: Writer) -> None:
    """Hospitals and clinics (a tune source added after the first six; its own phrasings)."""
    for _ in range(8):
        s, n = w.v.name()
        w.one(pick(w, "患者姓名", "病人叫", "就诊人是我儿子 ", "挂号的是", "陪护家属", "我替我奶奶挂号 她叫", "主治医生开的是给"), ("NAME", n), pick(w, "", " 的", " 今天的号", " 住几床"), note="name")
    for _ in range(3):
        s, spelled, n = w.v.spelled_name()
        w.one("患者", ("NAME", n), " ", spelled, " 的", s, note="spelled surname")
    w.one("我就是", ("NAME", w.v.name()[1]), " 本人", note="name")
    w.one("您好我是", ("NAME", w.v.name()[0] + "小姐"), note="caller title")
    for _ in range(5):
        d = w.v.mobile()
        w.one(pick(w, "家属联系电话 ", "回访打这个", "预约手机号"), ("PHONE", w.say.phone(d)), note="phone")
    for _ in range(4):
        d = w.v.id_card()
        w.one(pick(w, "医保登记的身份证 ", "就诊卡绑定的身份证号", "患者证件号"), ("ID_CARD", w.say.id_card(d)), note="id")
    for _ in range(3):
        w.one(pick(w, "报告寄到", "药寄到 "), ("ADDRESS", w.v.address()), note="address")
    for _ in range(3):
        w.one(pick(w, "预约的验证码", "挂号验证码是", "短信验证码"), ("VERIFICATION_CODE", w.say.code(w.v.code())), note="code")
    w.one("停车场那辆", ("LICENSE_PLATE", w.say.plate(*w.v.plate())), " 是我的", note="plate")
    every_style(w, ("病人家属电话", "联系方式", "打给我女儿", "复诊提醒发到"), ("谢谢", "那个号码", "她白天都在", "下午有人接"))
    s, n = w.v.name()
    w.call([["患者名字"], [("NAME", n), " 今年七十了"]], "split NAME")
    split_number(w, "PHONE", w.v.mobile(), "紧急联系人电话", 2, (3, 4, 4))
    for t in ("挂号费五十元", "住院押金三千", "门诊时间早上八点到十二点", "床号是三十二床", "就诊卡号 0008 2231 7756",
              "医保报销百分之七十", "我打过120了", "复诊在下周三", "医生工号 3307", "药一天三次 每次两片", "我姓刘 刘备的刘",
              "张医生今天不坐诊", "住在二号楼六层", "病历号 M20240518013", "体温三十八度五", "预约了十五号下午"):
        w.one(t, note="negative")


def every_style(w: Writer, cues: tuple[str, ...], tails: tuple[str, ...]) -> None:
    """One phone number per dictation style, glued to its cue and to what follows or spaced (a stress block)."""
    for style in ("arabic", "grouped", "zh", "zh_grouped", "filler", "spaced", "mixed", "comma", "radio", "fullwidth", "repeat"):
        for glued in (True, False):
            d = w.v.mobile() if w.r.random() < 0.8 else w.v.landline()
            sep = "" if glued else " "
            w.one(pick(w, *cues) + sep, ("PHONE", w.say.phone(d, style)), sep + pick(w, *tails), note=f"phone, {style}, {'glued' if glued else 'spaced'}")


def government(w: Writer) -> None:
    """Public services and utilities (a tune source added after the first six; its own phrasings)."""
    for _ in range(6):
        s, n = w.v.name()
        w.one(pick(w, "户主姓名", "缴费户名是", "申请人", "房东叫", "委托人是我舅舅 "), ("NAME", n), pick(w, "", " 名下的", " 那边"), note="name")
    w.one("我是", ("NAME", w.v.name()[0] + "先生"), " 电费的事", note="caller title")
    for _ in range(2):
        s, spelled, n = w.v.spelled_name()
        w.one("户名", ("NAME", n), " ", spelled, note="spelled surname")
    for _ in range(5):
        d = w.v.mobile() if w.r.random() < 0.7 else w.v.landline()
        w.one(pick(w, "预留电话", "联系我 ", "办事人手机"), ("PHONE", w.say.phone(d)), note="phone")
    for _ in range(4):
        d = w.v.id_card()
        w.one(pick(w, "申请人身份证", "社保登记的身份证号码 ", "户主身份证"), ("ID_CARD", w.say.id_card(d)), note="id")
    for _ in range(4):
        p, l, rest = w.v.plate()
        w.one(pick(w, "违章的车牌", "我的车 ", "年检的车牌号是", "挪车的那辆"), ("LICENSE_PLATE", w.say.plate(p, l, rest)), note="plate")
    for _ in range(3):
        w.one(pick(w, "用电地址 ", "燃气开户地址", "房子在"), ("ADDRESS", w.v.address()), note="address")
    for _ in range(3):
        w.one(pick(w, "办理验证码", "动态验证码是", "网上办事的校验码"), ("VERIFICATION_CODE", w.say.code(w.v.code() if w.r.random() < 0.7 else w.v.alnum_code())), note="code")
    w.one("退费到银行卡 ", ("BANK_CARD", w.say.number(w.v.card())), note="card")
    w.one("港澳通行证号", ("PASSPORT", w.say.passport("C" + w.v.digits(8))), note="passport")
    split_number(w, "ID_CARD", w.v.id_card(), "身份证号码", 2, (6, 8, 4))
    for t in ("户号 3301 0088 2231", "电费一百八十七块三", "燃气表读数 0452", "水费每吨三块五", "12345热线", "办理时间工作日九点到五点",
              "违章罚款两百扣三分", "社保缴费基数五千", "窗口号是十八号", "公积金余额两万三", "营业执照号 91330100MA2KXXXX0L",
              "去年十二月办的", "王师傅说下午过来抄表", "排队号A032", "限行尾号四和九"):
        w.one(t, note="negative")


INDUSTRIES: list[tuple[str, Callable[[Writer], None]]] = [
    ("bank", bank), ("telecom", telecom), ("ecommerce", ecommerce),
    ("insurance", insurance), ("logistics", logistics), ("travel", travel),
    ("healthcare", healthcare), ("government", government),  # tune sources added after the first six
]


def main() -> None:
    rows: list[list[str]] = []
    for seed, (source, make) in enumerate(INDUSTRIES, 1):
        w = Writer(source, 2026_1207 + seed)
        make(w)
        rows.extend(w.rows(len(rows) + 1))
    header = ["id", "call", "turn", "text", "entities", "note", "source"]
    with OUT.open("w", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        for r in rows:
            assert all("\t" not in x and "\n" not in x for x in r)
            f.write("\t".join(r) + "\n")
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()
