# ruff: noqa: E501, E741  (data templates: one phrasing per line; short throwaway names)
"""Writes data/pii_dev_asr.tsv: a second round of PII dev rows written for this project, six new sources.

Written after the first round (data/pii_dev_own.tsv) was tuned on, to see whether the rules generalise: new
industries with their own phrasings, and the ways a recognizer writes spoken digits that the first round had
little of — 1 heard and written as 幺 / 要 / 腰 / 妖, 0 as 洞 / 动 / 〇, 7 as 拐, 2 as 两, digits split over pauses
(commas, 、, spaces, dashes, dots, fillers, several utterances), +86 / 0086 / 86 / 加八六 in front, landlines
with area codes and 转 / 分机 extensions, numbers repeated back; and hotlines (400 / 800 / 95xxx / 1xxxx),
amounts, dates, order and tracking numbers that must stay. Also names (cues, titles, spelled surnames, a name
in the next utterance), verification codes (spoken digits and letters), plates (spoken, new-energy) and
passports (spoken letters and digits).

Sources (the split rule is `speechsvc.evaluation.pii_eval.split_of`, data/pii_dev.md): tune — ``property``
(property management), ``autoservice`` (car dealers and repair), ``education`` (schools and training),
``delivery`` (food and errand delivery), ``securities`` (brokerage and funds), ``rental`` (car and flat
rental); holdout — ``hotel``, ``recruiting``, ``legal``. The last three tune sources were written as holdout,
but their errors were listed once by mistake before any fix (an evaluation run that imported the old split),
so they went to tune and three more sources were written as holdout. The holdout templates were written
before any detector change of this round and are not edited afterwards.

Every sentence, template and value here was written for this project; numbers are drawn at random; nothing is
taken from ../shared/eval.

    python training/make_pii_dev_asr.py
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_pii_dev_own import DOTTED, PLATE_LETTERS, PROVINCES, ZH, Turn, Writer

OUT = Path(__file__).resolve().parent.parent / "data" / "pii_dev_asr.tsv"

# How a recognizer writes a spoken digit: (character, weight) per digit.
ASR_DIGIT = {
    "0": (("零", 6), ("〇", 2), ("洞", 2), ("动", 1)),
    "1": (("一", 4), ("幺", 4), ("要", 2), ("腰", 1), ("妖", 1)),
    "2": (("二", 7), ("两", 3)),
    "7": (("七", 8), ("拐", 2)),
}
AREA = ("010", "021", "020", "022", "023", "024", "025", "027", "028", "029", "0755", "0571", "0512", "0731",
        "0591", "0351", "0471", "0851", "0931", "0991", "0574", "0769")
COUNTRY = ("+86 ", "+86", "0086 ", "0086-", "86 ", "加八六 ", "+86-")


class Asr:
    """Spoken digits as a recognizer writes them."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    def digit(self, c: str, odd: float = 0.5) -> str:
        if c in ASR_DIGIT and self.r.random() < odd:
            chars, weights = zip(*ASR_DIGIT[c], strict=True)
            return self.r.choices(chars, weights)[0]
        return ZH[int(c)] if c.isdigit() else c

    def zh(self, d: str, odd: float = 0.5) -> str:
        return "".join(self.digit(c, odd) for c in d)

    def groups(self, d: str) -> list[str]:
        if len(d) == 11 and d.startswith("1"):
            sizes = self.r.choice(((3, 4, 4), (3, 4, 4), (3, 3, 5), (3, 8), (7, 4), (4, 4, 3)))
        else:
            sizes = self.r.choice(((4, 4), (3, 4), (2, 3, 3), (4, 4, 4)))
        out, i = [], 0
        for s in sizes:
            if i < len(d):
                out.append(d[i : i + s])
                i += s
        if i < len(d):
            out[-1] += d[i:]
        return out

    def phone(self, d: str, style: str | None = None) -> str:
        style = style or self.r.choice(("zh", "zh_groups", "comma", "dunhao", "dash", "dot", "mixed_groups",
                                        "mixed_chars", "filler", "spaced", "spaced_zh", "arabic_groups", "yao_all"))
        g = self.groups(d)
        if style == "zh":
            return self.zh(d)
        if style == "zh_groups":
            return " ".join(self.zh(x) for x in g)
        if style == "comma":
            return self.r.choice(("，", ",", "。")).join(self.zh(x) if self.r.random() < 0.7 else x for x in g)
        if style == "dunhao":  # 一、三、八 digit by digit
            return "、".join(self.digit(c, 0.3) for c in d)
        if style == "dash":
            return "-".join(g)
        if style == "dot":
            return ".".join(g)
        if style == "mixed_groups":
            return self.r.choice((" ", "")).join(x if i % 2 else self.zh(x) for i, x in enumerate(g))
        if style == "mixed_chars":  # the recognizer switches script mid-number
            return "".join(self.digit(c, 0.6) if self.r.random() < 0.5 else c for c in d)
        if style == "filler":
            out = self.zh(g[0]) if self.r.random() < 0.6 else g[0]
            for x in g[1:]:
                out += self.r.choice((" 呃 ", "，嗯，", " 那个 ", "…", " 然后是 ", "，呃")) + (self.zh(x) if self.r.random() < 0.6 else x)
            return out
        if style == "spaced":
            return " ".join(d)
        if style == "spaced_zh":
            return " ".join(self.digit(c, 0.4) for c in d)
        if style == "arabic_groups":
            return " ".join(g)
        if style == "yao_all":  # every 1 as 要 or 腰 (the recognizer's favourite for 幺)
            return "".join(self.r.choice(("要", "要", "腰")) if c == "1" else self.digit(c, 0.3) for c in d)
        raise ValueError(style)

    def landline(self, area: str, local: str, ext: str | None) -> str:
        style = self.r.choice(("dash", "space", "zh", "paren", "glued", "mixed"))
        a = area if style != "zh" else self.zh(area, 0.6)
        l = local if style not in ("zh", "mixed") else self.zh(local, 0.5)
        if style == "dash":
            out = f"{a}-{l[:4]}-{l[4:]}" if self.r.random() < 0.5 else f"{a}-{l}"
        elif style == "space":
            out = f"{a} {l[:4]} {l[4:]}"
        elif style == "paren":
            out = f"（{a}）{l}"
        elif style == "glued":
            out = a + l
        else:
            out = f"{a} {l}"
        if ext:
            out += self.r.choice(("转", " 转 ", "转分机", " 分机 ", "-")) + (self.zh(ext, 0.5) if self.r.random() < 0.5 else ext)
        return out

    def code(self, v: str) -> str:
        if not v.isdigit():
            style = self.r.choice(("plain", "spaced", "spoken"))
            if style == "plain":
                return v
            if style == "spaced":
                return " ".join(v)
            return " ".join(self.digit(c, 0.5) if c.isdigit() else c for c in v)
        style = self.r.choice(("arabic", "zh", "spaced", "spaced_zh", "pairs"))
        if style == "arabic":
            return v
        if style == "zh":
            return self.zh(v)
        if style == "spaced":
            return " ".join(v)
        if style == "spaced_zh":
            return " ".join(self.digit(c) for c in v)
        return " ".join(self.zh(v[i : i + 2]) for i in range(0, len(v), 2))

    def plate(self, p: str, letter: str, rest: str) -> str:
        style = self.r.choice(("plain", "dot", "space", "spoken", "spoken_spaced", "letter_spaced"))
        if style == "plain":
            return p + letter + rest
        if style == "dot":
            return p + letter + "·" + rest
        if style == "space":
            return p + letter + " " + rest
        if style == "spoken":
            return p + letter + "".join(self.digit(c, 0.7) if c.isdigit() else c for c in rest)
        if style == "spoken_spaced":
            return p + " " + letter + " " + " ".join(self.digit(c, 0.7) if c.isdigit() else c for c in rest)
        return p + letter + " " + " ".join(rest)

    def passport(self, v: str) -> str:
        head = v[:2] if v[1].isalpha() else v[:1]
        body = v[len(head):]
        style = self.r.choice(("plain", "space", "zh", "spaced", "groups", "lower"))
        if style == "plain":
            return v
        if style == "space":
            return head + " " + body
        if style == "zh":
            return head + self.r.choice(("", " ")) + self.zh(body)
        if style == "spaced":
            return " ".join(v)
        if style == "lower":
            return head.lower() + body
        return head + " " + body[:4] + " " + body[4:]


class W(Writer):
    def __init__(self, source: str, seed: int) -> None:
        super().__init__(source, seed)
        self.asr = Asr(self.r)

    def landline(self) -> tuple[str, str, str | None]:
        area = self.r.choice(AREA)
        local = self.r.choice("2345678") + self.v.digits(7 if len(area) == 3 else self.r.choice((6, 7)))
        ext = self.v.digits(self.r.choice((3, 4))) if self.r.random() < 0.4 else None
        return area, local, ext

    def plate(self, new_energy: bool = False) -> tuple[str, str, str]:
        """(province, letter, rest): 5 characters with at most 2 letters, or a new-energy plate's 6."""
        p, l = self.r.choice(PROVINCES), self.r.choice(PLATE_LETTERS)
        if new_energy:
            rest = self.r.choice("DF") + self.v.digits(5) if self.r.random() < 0.7 else self.v.digits(5) + self.r.choice("DF")
        else:
            chars = list(self.v.digits(5))
            for i in self.r.sample(range(5), self.r.choice((0, 0, 1, 1, 2))):
                chars[i] = self.r.choice(PLATE_LETTERS)
            rest = "".join(chars)
        return p, l, rest

    def split_phone(self, cue: str, parts: int, note: str = "split PHONE") -> None:
        d = self.v.mobile()
        cuts = [self.r.choice((3, 7))] if parts == 2 else [3, 7]
        chunks = [d[a:b] for a, b in zip([0, *cuts], [*cuts, 11], strict=True)]
        turns: list[Turn] = []
        for i, ch in enumerate(chunks):
            said = self.asr.zh(ch) if self.r.random() < 0.6 else ch
            if i == 0:
                turns.append([cue, ("PHONE", said)])
            else:
                turns.append([self.r.choice(("", "", "嗯 ", "然后", "后面 ", "再往后是")), ("PHONE", said)])
            if i == 0 and self.r.random() < 0.3:
                turns.append([self.r.choice(("你记一下", "等等我看看", "稍等"))])
        self.call(turns, note)


def pk(w: W, *options: str) -> str:
    return w.r.choice(options)


def names(w: W, cues: tuple[str, ...], tails: tuple[str, ...], n: int) -> None:
    for _ in range(n):
        s, full = w.v.name()
        form = w.r.random()
        if form < 0.4:
            w.one(pk(w, *cues), ("NAME", full), pk(w, *tails), note="name")
        elif form < 0.6:
            w.one(pk(w, "我姓", "免贵姓", "姓"), s, pk(w, " 叫", "，叫", " 全名", "，名字叫"), ("NAME", full), pk(w, *tails), note="name after surname")
        elif form < 0.8:
            sp_s, spelled, sp_full = w.v.spelled_name()
            w.one(pk(w, "我姓", "姓"), sp_s, pk(w, " ", "，"), spelled, pk(w, "的那个", "", "，"), pk(w, " 叫", " 全名", "，叫"), ("NAME", sp_full), note="spelled surname")
        else:
            cue, title, tail = pk(w, "我是", "这边是", "找一下", "麻烦转"), pk(w, "先生", "女士", "小姐", "老师", "经理"), pk(w, "", " 谢谢", " 对吧")
            if title in ("老师", "经理"):  # staff: not the caller's PII (the shared set's convention: 张经理 is a negative)
                w.one(cue, s + title, tail, note="negative: staff surname and title")
            else:
                w.one(cue, ("NAME", s + title), tail, note="surname and title")


def codes(w: W, cues: tuple[str, ...], n: int) -> None:
    for _ in range(n):
        c = w.v.code(w.r.choice((4, 5, 6, 6, 8))) if w.r.random() < 0.7 else w.v.alnum_code()
        w.one(pk(w, *cues), ("VERIFICATION_CODE", w.asr.code(c)), pk(w, "", " 对吗", " 你看一下", "，对"), note="code")


def negatives(w: W, texts: list[str]) -> None:
    for t in texts:
        w.one(t, note="negative")


# ------------------------------------------------------------------ tune sources


def property_mgmt(w: W) -> None:
    for _ in range(14):
        d = w.v.mobile()
        w.one(pk(w, "业主电话是", "登记一下我手机 ", "留个电话 ", "你打我电话", "维修师傅联系", "我老婆的号是", "联系方式 "), ("PHONE", w.asr.phone(d)), pk(w, "", " 谢谢", " 白天都在", "，找我就行", " 打不通就发短信"), note="phone")
    for _ in range(4):
        d = w.v.mobile()
        w.one(pk(w, "电话", "手机 "), ("PHONE", w.r.choice(("+86 ", "0086 ", "86 ")) + w.asr.phone(d, pk(w, "arabic_groups", "dash", "zh"))), note="phone with country code")
    for _ in range(5):
        a, l, e = w.landline()
        w.one(pk(w, "物业办公室座机", "家里座机 ", "打这个固话 ", "我单位电话是"), ("PHONE", w.asr.landline(a, l, e)), note="landline")
    w.split_phone("我手机号是", 2)
    w.split_phone("你记一下电话", 3)
    w.split_phone("业主手机", 2)
    names(w, ("业主叫", "房主是", "户主是", "我叫", "登记的是"), ("", " 三栋的", " 交物业费"), 8)
    w.call([["租户叫什么来着 哦对"], [("NAME", w.v.name()[1]), " 是租户"]], "split NAME")
    codes(w, ("门禁的验证码是", "小程序发的动态码 ", "缴费验证码", "校验码是"), 4)
    for _ in range(2):
        p, l, rest = w.plate()
        w.one(pk(w, "车位登记的车牌是", "我的车牌 "), ("LICENSE_PLATE", w.asr.plate(p, l, rest)), note="plate")
    w.one("身份证号 ", ("ID_CARD", w.v.id_card()), " 办门禁卡", note="id")
    negatives(w, [
        "物业费一年两千八百八十块", "三栋二单元一零二", "停车费每月三百", "报修单号 2024121800312", "物业热线400-889-1234",
        "水电费四百一十七块五", "我们小区有十二栋楼", "下周二上午十点来修", "拨打九五五九八报修电力", "电梯坏了三天了",
        "我住十八楼", "维修基金交了一万三", "快递柜取件码 6621 0087", "面积一百二十八平", "2025年1月1号开始涨价",
    ])


def autoservice(w: W) -> None:
    for _ in range(14):
        d = w.v.mobile()
        w.one(pk(w, "车主电话", "取车的时候打", "销售顾问的手机号 ", "保养预约留的是", "我电话号码是", "拖车师傅电话"), ("PHONE", w.asr.phone(d)), pk(w, "", " 周末也行", "，记一下", " 打这个"), note="phone")
    for _ in range(3):
        d = w.v.mobile()
        w.one("号码", ("PHONE", w.asr.phone(d, "yao_all")), note="phone, 幺 heard as 要/腰")
    for _ in range(4):
        a, l, e = w.landline()
        w.one(pk(w, "4S店座机是", "前台电话 ", "售后电话"), ("PHONE", w.asr.landline(a, l, e)), note="landline")
    w.split_phone("手机", 2)
    w.split_phone("车主手机号码", 3)
    names(w, ("车主是", "行驶证上的名字是", "我叫", "送修人"), ("", " 来保养", " 车停在门口"), 8)
    for _ in range(8):
        p, l, rest = w.plate()
        w.one(pk(w, "车牌号", "车牌是", "我的车 ", "那台", "挂的牌照是"), ("LICENSE_PLATE", w.asr.plate(p, l, rest)), pk(w, "", " 的保养", " 年检", " 停在三号工位"), note="plate")
    for _ in range(3):
        p, l, rest = w.plate(new_energy=True)
        w.one(pk(w, "新能源车牌", "绿牌 "), ("LICENSE_PLATE", w.asr.plate(p, l, rest)), note="plate, new energy")
    codes(w, ("预约验证码", "App的动态码 ", "短信校验码"), 3)
    w.one("身份证 ", ("ID_CARD", w.v.id_card()), note="id")
    w.one("尾款转到 ", ("BANK_CARD", w.v.card()), note="card")
    negatives(w, [
        "保养一次六百八", "车架号 LSVAM4187C2184847", "发动机号 CSS 128376", "跑了三万八千公里", "救援电话 800-810-8888",
        "二零二三年八月提的车", "轮胎型号 225/45 R17", "工单号 WO20241207015", "全国统一客服 4008 123 123", "油耗百公里七个油",
        "下午两点半能取车吗", "报价一十三万八千八", "变速箱油换了四升", "保险打九五五一八", "一年两次保养",
    ])


def education(w: W) -> None:
    for _ in range(12):
        d = w.v.mobile()
        w.one(pk(w, "家长电话", "孩子妈妈的手机 ", "报名留的号码是", "班主任手机", "紧急联系人电话 ", "你加我微信 就是手机号"), ("PHONE", w.asr.phone(d)), pk(w, "", " 谢谢老师", " 有事打这个"), note="phone")
    for _ in range(3):
        d = w.v.mobile()
        w.one(pk(w, "电话 ", "手机 "), ("PHONE", w.r.choice(("+86", "+86 ", "加八六 ")) + w.asr.phone(d, pk(w, "zh", "spaced", "arabic_groups"))), note="phone with country code")
    for _ in range(3):
        a, l, e = w.landline()
        w.one(pk(w, "教务处电话", "学校座机 "), ("PHONE", w.asr.landline(a, l, e)), note="landline")
    w.split_phone("家长手机", 2)
    w.split_phone("我的电话是", 3)
    names(w, ("孩子叫", "学生姓名 ", "家长是", "我叫", "班主任是"), ("", " 三年级二班", " 报的钢琴课"), 10)
    w.call([["学生的名字是"], [("NAME", w.v.name()[1])]], "split NAME")
    w.one("学生叫", ("NAME", w.r.choice(DOTTED)), note="dotted name")
    codes(w, ("家校通的验证码 ", "登录验证码是", "考试报名的校验码", "动态码"), 4)
    for _ in range(3):
        w.one(pk(w, "学生身份证号", "考生身份证 "), ("ID_CARD", w.v.id_card()), note="id")
    w.one("游学要办护照 护照号", ("PASSPORT", w.asr.passport("E" + w.v.digits(8))), note="passport")
    negatives(w, [
        "学费一学期八千六", "准考证号 2024 3301 2256", "三年级二班一共四十五个人", "下周三下午三点开家长会", "课时费一节两百",
        "教育热线 12345", "学号 20230815", "成绩九十八分", "二零二五年六月七号高考", "教室在三楼三零五",
        "报名费三百五十元", "全国咨询热线 400 600 9988", "一共二十四节课", "孩子今年八岁", "试卷第十二题",
    ])


# ------------------------------------------------------------------ holdout sources


def delivery(w: W) -> None:
    for _ in range(14):
        d = w.v.mobile()
        w.one(pk(w, "骑手电话", "订餐人手机", "到了打我电话", "收餐电话写的", "麻烦打", "我手机尾号不对 正确的是", "送到了联系"), ("PHONE", w.asr.phone(d)), pk(w, "", " 放前台就行", " 敲门也可以", "，别打错"), note="phone")
    for _ in range(3):
        d = w.v.mobile()
        w.one(pk(w, "号码", "电话"), ("PHONE", w.r.choice(COUNTRY) + w.asr.phone(d, pk(w, "zh", "arabic_groups", "dash", "spaced"))), note="phone with country code")
    for _ in range(4):
        a, l, e = w.landline()
        w.one(pk(w, "公司前台座机", "店里电话 ", "打办公室"), ("PHONE", w.asr.landline(a, l, e)), note="landline")
    w.split_phone("电话是", 2)
    w.split_phone("骑手手机", 3)
    w.split_phone("我号码", 2)
    names(w, ("收餐人", "订餐人叫", "我叫", "骑手叫"), ("", " 外卖到了吗", " 点的奶茶"), 8)
    w.call([["收件人写的是"], [("NAME", w.v.name()[1]), " 对"]], "split NAME")
    codes(w, ("取餐码不是 是验证码", "下单验证码", "收到的动态码 ", "验证码"), 4)
    w.one("送到", ("ADDRESS", w.v.address()), note="address")
    negatives(w, [
        "一共消费六十八块五", "配送费三块", "订单号 1738 2294 0581 77", "预计十二点四十送达", "满三十减十二",
        "客服热线 10109777", "投诉打 400-820-5555", "取餐码 A023", "二十分钟之前下的单", "给骑手打赏五块",
        "我点了两份黄焖鸡", "店铺评分四点八", "超时了十五分钟", "一月三号的订单", "红包抵扣八元",
    ])


def securities(w: W) -> None:
    for _ in range(13):
        d = w.v.mobile()
        w.one(pk(w, "开户预留手机", "我客户经理的手机号是", "资金账户绑定的手机 ", "换绑到新号码", "风险测评留的电话"), ("PHONE", w.asr.phone(d)), pk(w, "", " 收不到短信", " 麻烦核对", "了"), note="phone")
    for _ in range(4):
        a, l, e = w.landline()
        w.one(pk(w, "营业部电话", "单位座机是", "办公电话 "), ("PHONE", w.asr.landline(a, l, e)), note="landline")
    for _ in range(2):
        d = w.v.mobile()
        w.one("手机", ("PHONE", w.asr.phone(d, "yao_all")), note="phone, 幺 heard as 要/腰")
    w.split_phone("新手机号", 2)
    w.split_phone("手机号码是", 3)
    names(w, ("开户人", "账户持有人", "我叫", "客户经理是"), ("", " 要修改密码", " 资金账户"), 8)
    for _ in range(4):
        w.one(pk(w, "身份证", "证件号 "), ("ID_CARD", w.v.id_card()), note="id")
    for _ in range(3):
        w.one(pk(w, "三方存管的银行卡", "转出到卡号 "), ("BANK_CARD", w.v.card()), note="card")
    codes(w, ("交易验证码", "登录的动态码是", "银证转账校验码 "), 4)
    w.one("境外开户的护照 ", ("PASSPORT", w.asr.passport("E" + w.v.digits(8))), note="passport")
    negatives(w, [
        "股票代码 600519", "成交价一千六百八十八", "买了五百股", "基金代码 110022", "收益率百分之四点二",
        "客服热线九五五七五", "资金账号尾号 3021", "二零二四年十二月五号的交易", "委托编号 880231", "市值二十三万六千",
        "手续费万分之二点五", "下午三点收盘", "申购费一点五折", "开户咨询 400-888-8888", "上证指数三千四百点",
    ])


def rental(w: W) -> None:
    for _ in range(12):
        d = w.v.mobile()
        w.one(pk(w, "租车人电话", "房东手机", "看房联系", "驾驶员手机号码 ", "紧急联系人 ", "还车前打"), ("PHONE", w.asr.phone(d)), pk(w, "", " 提前半小时", " 下午都在", "，谢谢"), note="phone")
    for _ in range(3):
        d = w.v.mobile()
        w.one(pk(w, "国外打回来 号码是", "电话 "), ("PHONE", w.r.choice(COUNTRY) + w.asr.phone(d, pk(w, "zh", "arabic_groups", "dash"))), note="phone with country code")
    for _ in range(3):
        a, l, e = w.landline()
        w.one(pk(w, "门店座机", "中介公司电话 "), ("PHONE", w.asr.landline(a, l, e)), note="landline")
    w.split_phone("我手机", 2)
    w.split_phone("房东电话", 2)
    names(w, ("租车人叫", "承租人", "房东姓名 ", "我叫", "合同上写的是"), ("", " 签合同", " 押金还没退"), 9)
    for _ in range(6):
        p, l, rest = w.plate()
        w.one(pk(w, "租的那台车 车牌", "还的车是", "车牌号码是 ", "提的车"), ("LICENSE_PLATE", w.asr.plate(p, l, rest)), pk(w, "", " 有刮痕", " 油是满的"), note="plate")
    w.one("驾驶证号就是身份证 ", ("ID_CARD", w.v.id_card()), note="id")
    codes(w, ("取车验证码", "电子合同的校验码是", "开锁动态码 "), 3)
    w.one("外籍租客护照号码", ("PASSPORT", w.asr.passport(w.r.choice(("E", "G")) + w.v.digits(8))), note="passport")
    w.one("押金退到 ", ("BANK_CARD", w.v.card()), note="card")
    negatives(w, [
        "日租金二百九十八", "押金三千", "房租每月四千五", "合同编号 ZL20241130008", "还车时间下午五点",
        "租期十二个月", "道路救援 400-123-4567", "油量还剩四分之一", "超时一小时收五十", "二零二五年二月到期",
        "房子八十九平两室一厅", "违章处理费两百", "预订单号 2412 0733 1856", "三号门店", "客服 95105105",
    ])


# ------------------------------------------------------------------ holdout sources (written after the first
# holdout three were seen by mistake, see data/pii_dev.md; not looked at since)


def hotel(w: W) -> None:
    for _ in range(13):
        d = w.v.mobile()
        w.one(pk(w, "入住人手机", "预订时留的号码是", "前台回电打", "订房电话 ", "入住登记的电话是", "客人联系方式是"), ("PHONE", w.asr.phone(d)), pk(w, "", " 晚点到店", " 帮我留个大床房", "，麻烦备注一下"), note="phone")
    for _ in range(3):
        d = w.v.mobile()
        w.one(pk(w, "海外客人的号码", "境外手机 "), ("PHONE", w.r.choice(COUNTRY) + w.asr.phone(d, pk(w, "zh", "arabic_groups", "dash", "spaced_zh"))), note="phone with country code")
    for _ in range(4):
        a, l, e = w.landline()
        w.one(pk(w, "酒店总机", "订房部座机 ", "公司协议价找这个电话"), ("PHONE", w.asr.landline(a, l, e)), note="landline")
    for _ in range(2):
        w.one(pk(w, "预订手机", "号码是"), ("PHONE", w.asr.phone(w.v.mobile(), "yao_all")), note="phone, 幺 heard as 要/腰")
    w.split_phone("入住人电话", 2)
    w.split_phone("我的手机号码", 3)
    names(w, ("入住人", "预订人姓名", "我叫", "同住的是", "订房的是"), ("", " 今晚入住", " 两晚"), 9)
    w.call([["入住人名字登记成"], [("NAME", w.v.name()[1]), pk(w, "", " 就行")]], "split NAME")
    for _ in range(3):
        w.one(pk(w, "外宾的护照号", "护照号码 ", "登记用护照"), ("PASSPORT", w.asr.passport(w.r.choice(("E", "G", "E")) + w.v.digits(8))), note="passport")
    w.one("入住登记身份证 ", ("ID_CARD", w.v.id_card()), note="id")
    codes(w, ("订单确认的验证码", "会员登录动态码 ", "退房校验码"), 3)
    for _ in range(2):
        p, l, rest = w.plate()
        w.one(pk(w, "停车场登记车牌", "我开的车是"), ("LICENSE_PLATE", w.asr.plate(p, l, rest)), note="plate")
    negatives(w, [
        "房费每晚六百八十八", "订单号 2024 1208 6601 35", "房间号一六零八", "早餐每位五十八", "延迟退房到下午两点",
        "会员积分一万两千", "预订热线 400-820-1234", "十二月二十四号入住", "押金五百元", "大床房还有三间",
        "前台分机是八零零八", "携程订单尾号 1387", "发票抬头写公司", "住三晚", "总价两千零六十四",
    ])


def recruiting(w: W) -> None:
    for _ in range(13):
        d = w.v.mobile()
        w.one(pk(w, "候选人电话", "简历上的手机号", "面试联系人的号码 ", "你回我这个号", "HR手机是", "紧急联系人手机"), ("PHONE", w.asr.phone(d)), pk(w, "", " 下午方便", " 工作日都在", "，加个微信也行"), note="phone")
    for _ in range(3):
        a, l, e = w.landline()
        w.one(pk(w, "人事部座机", "公司电话 ", "面试地点的前台电话"), ("PHONE", w.asr.landline(a, l, e)), note="landline")
    for _ in range(2):
        d = w.v.mobile()
        w.one("电话", ("PHONE", w.r.choice(COUNTRY) + w.asr.phone(d, pk(w, "zh", "dash"))), note="phone with country code")
    w.split_phone("候选人手机", 2)
    w.split_phone("我的号码是", 3)
    names(w, ("候选人叫", "应聘者", "我叫", "推荐人是", "入职的是"), ("", " 来面试", " 明天入职"), 10)
    w.call([["介绍我来的是"], [("NAME", w.v.name()[1])]], "split NAME")
    w.one("候选人是", ("NAME", w.r.choice(DOTTED)), note="dotted name")
    for _ in range(3):
        w.one(pk(w, "入职登记身份证", "身份证号码 "), ("ID_CARD", w.v.id_card()), note="id")
    for _ in range(2):
        w.one(pk(w, "工资卡卡号", "工资发到 "), ("BANK_CARD", w.v.card()), note="card")
    codes(w, ("测评系统验证码", "入职小程序的动态码是", "背调授权校验码 "), 3)
    negatives(w, [
        "月薪一万五到两万", "工号 20481", "面试定在周四上午十点", "试用期三个月", "五险一金按八千交",
        "招聘热线 400 700 8866", "岗位编号 JD20241207", "年终奖两个月", "二零二五年一月二号入职", "团队一共十二个人",
        "笔试七十八分", "社保卡还没办", "打九五五一一咨询社保", "年假十天", "一面二面三面",
    ])


def legal(w: W) -> None:
    for _ in range(12):
        d = w.v.mobile()
        w.one(pk(w, "当事人电话", "对方律师的手机 ", "委托人联系电话", "原告手机号是", "送达的联系号码 "), ("PHONE", w.asr.phone(d)), pk(w, "", " 尽快联系", " 开庭前确认", "，记在卷宗里"), note="phone")
    for _ in range(4):
        a, l, e = w.landline()
        w.one(pk(w, "律所总机", "法院立案庭电话 ", "调解中心座机"), ("PHONE", w.asr.landline(a, l, e)), note="landline")
    for _ in range(2):
        d = w.v.mobile()
        w.one(pk(w, "境外当事人号码", "电话 "), ("PHONE", w.r.choice(COUNTRY) + w.asr.phone(d, pk(w, "zh", "arabic_groups"))), note="phone with country code")
    w.split_phone("当事人手机", 2)
    w.split_phone("委托人电话", 2)
    names(w, ("当事人", "委托人叫", "被告是", "我叫", "代理律师是"), ("", " 的案子", " 要咨询"), 10)
    w.call([["对方当事人叫"], [("NAME", w.v.name()[1]), pk(w, "", " 没错")]], "split NAME")
    for _ in range(3):
        w.one(pk(w, "当事人身份证", "被告身份证号 "), ("ID_CARD", w.v.id_card()), note="id")
    w.one("赔偿款打到", ("BANK_CARD", w.v.card()), note="card")
    codes(w, ("电子送达验证码", "网上立案的动态码 ", "校验码是"), 3)
    for _ in range(2):
        p, l, rest = w.plate()
        w.one(pk(w, "肇事车辆车牌", "对方车牌号 "), ("LICENSE_PLATE", w.asr.plate(p, l, rest)), note="plate")
    w.one("当事人护照", ("PASSPORT", w.asr.passport("E" + w.v.digits(8))), note="passport")
    negatives(w, [
        "案号 (2024)京0105民初12345号", "诉讼费两千三百元", "开庭时间一月十五号上午九点", "律师费八万", "第十二条第三款",
        "赔偿金额十三万八千", "法律援助热线 12348", "二零二三年五月签的合同", "一审判了六个月", "调解书第三页",
        "全国律师咨询 400-6677-889", "证据一共十四份", "第三法庭", "上诉期十五天", "标的额五十万",
    ])


SOURCES: list[tuple[str, Callable[[W], None]]] = [
    ("property", property_mgmt), ("autoservice", autoservice), ("education", education),  # tune
    ("delivery", delivery), ("securities", securities), ("rental", rental),  # tune (meant as holdout, seen)
    ("hotel", hotel), ("recruiting", recruiting), ("legal", legal),  # holdout
]


def main() -> None:
    rows: list[list[str]] = []
    for seed, (source, make) in enumerate(SOURCES, 1):
        w = W(source, 2026_1208 + seed)
        make(w)
        rows.extend(w.rows(len(rows) + 1))
    for r in rows:
        r[0] = r[0].replace("own-", "asr-")
    header = ["id", "call", "turn", "text", "entities", "note", "source"]
    with OUT.open("w", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        for r in rows:
            assert all("\t" not in x and "\n" not in x for x in r)
            f.write("\t".join(r) + "\n")
    print(f"wrote {len(rows)} rows to {OUT}")


if __name__ == "__main__":
    main()
