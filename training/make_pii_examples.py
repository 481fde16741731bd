# ruff: noqa: E501  (data rows: one example per line reads better than wrapped)
"""Writes data/pii_examples.tsv: the project's own PII examples (every sentence, name and number written for
this project; IDs and card numbers generated with valid or deliberately invalid checksums). Same format as
the evaluation sets, so `speechsvc eval pii data/pii_examples.tsv` scores it; the tests use it too.

    python training/make_pii_examples.py
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data" / "pii_examples.tsv"

# (call, text, [(type, span text)], note); consecutive rows with the same call are one call's utterances.
ROWS: list[tuple[str, str, list[tuple[str, str]], str]] = [
    # phones
    ("x01", "我的手机是幺五九 零二八七 三六四一", [("PHONE", "幺五九 零二八七 三六四一")], "chinese digits with 幺, grouped"),
    ("x02", "手机号码 18603921457 麻烦记一下", [("PHONE", "18603921457")], "arabic"),
    ("x03", "电话是 一三九 呃 幺零二四 嗯 八八六七", [("PHONE", "一三九 呃 幺零二四 嗯 八八六七")], "fillers inside"),
    ("x04", "打我老婆电话17717653298也行", [("PHONE", "17717653298")], "third party, glued"),
    ("x05", "家里座机0571-86912345", [("PHONE", "0571-86912345")], "landline 4-digit area code"),
    ("x06", "座机是零二五 八四六二 七七一九", [("PHONE", "零二五 八四六二 七七一九")], "chinese landline"),
    ("x07", "联系方式是 +86 136 2258 4410", [("PHONE", "+86 136 2258 4410")], "country code belongs to the span"),
    ("x08", "手机号一三八 两个九 四七 六二三幺", [("PHONE", "一三八 两个九 四七 六二三幺")], "repeat phrase 两个九"),
    ("x09", "电话是152 3847 6690 不对 6609", [("PHONE", "152 3847 6690 不对 6609")], "self-correction"),
    ("x10", "你就打18907315526找我", [("PHONE", "18907315526")], "no cue word, shape"),
    ("x11", "号码是１３５ ２２９０ ７７１８", [("PHONE", "１３５ ２２９０ ７７１８")], "full-width digits"),
    ("x12", "手機號碼是13922458107", [("PHONE", "13922458107")], "traditional characters"),
    ("x13", "手机尾号是 六六二八", [("PHONE", "六六二八")], "partial phone"),
    # ID cards
    ("x20", "身份证号码510104198803143310", [("ID_CARD", "510104198803143310")], "valid checksum"),
    ("x21", "身份证是 四二零一零六 一九七五零八二二 九七零八", [("ID_CARD", "四二零一零六 一九七五零八二二 九七零八")],
     "chinese numerals grouped"),
    ("x22", "证件号 44030419850612620X", [("ID_CARD", "44030419850612620X")], "ends with X; valid checksum"),
    ("x23", "身份证号是三二零一零六一九七零零二零三二三九叉", [("ID_CARD", "三二零一零六一九七零零二零三二三九叉")],
     "X read as 叉"),
    ("x24", "身份证最后四位是3310", [("ID_CARD", "3310")], "partial ID"),
    ("x25", "我身份证 370202200101051548", [("ID_CARD", "370202200101051548")], "invalid checksum"),
    ("x26", "你看一下这个 330102199204174041 是我的", [("ID_CARD", "330102199204174041")], "no cue, valid ID shape"),
    # bank cards
    ("x30", "卡号是 6228 4801 8159 0830 160", [("BANK_CARD", "6228 4801 8159 0830 160")], "19 digits; Luhn ok"),
    ("x31", "我的储蓄卡 六二一七 零零六一 三一八六 零九一三 九零五", [("BANK_CARD", "六二一七 零零六一 三一八六 零九一三 九零五")],
     "chinese numerals 19 digits"),
    ("x32", "信用卡尾号八二四五 这个月还了吗", [("BANK_CARD", "八二四五")], "card piece"),
    ("x33", "就是尾号6214的那张工资卡", [("BANK_CARD", "6214")], "piece named after"),
    ("x34", "钱退到4367429960308245吧", [("BANK_CARD", "4367429960308245")], "16 digits, no cue; Luhn ok"),
    ("x35", "借记卡账号 6225 8862 8194 8213", [("BANK_CARD", "6225 8862 8194 8213")], "Luhn fail, cue"),
    # verification codes
    ("x40", "短信验证码是 三九一七", [("VERIFICATION_CODE", "三九一七")], "4 digits chinese"),
    ("x41", "收到的动态码是 5 2 8 0 1 6", [("VERIFICATION_CODE", "5 2 8 0 1 6")], "spaced digits"),
    ("x42", "验证码 749203", [("VERIFICATION_CODE", "749203")], "arabic"),
    # passports, plates, e-mail
    ("x50", "护照号是E73029581", [("PASSPORT", "E73029581")], "E + 8 digits"),
    ("x51", "我的护照 EA1234567 下个月到期", [("PASSPORT", "EA1234567")], "E + letter + 7 digits"),
    ("x52", "港澳通行证 C 五三八二 九一零四", [("PASSPORT", "C 五三八二 九一零四")], "permit, chinese digits"),
    ("x53", "车牌号是川A8K2L9", [("LICENSE_PLATE", "川A8K2L9")], "new-energy length"),
    ("x54", "就是苏E D38291 那辆车", [("LICENSE_PLATE", "苏E D38291")], "new-energy plate with space"),
    ("x55", "车牌 鲁B·七Q三二五", [("LICENSE_PLATE", "鲁B·七Q三二五")], "spoken digits, middle dot"),
    ("x56", "邮箱 lixiaoming2020 艾特 qq 点 com", [("EMAIL", "lixiaoming2020 艾特 qq 点 com")], "spoken e-mail"),
    ("x57", "发到 wang.fang@163.com 就行", [("EMAIL", "wang.fang@163.com")], "plain e-mail"),
    ("x58", "邮件发 jianghu at gmail dot com", [("EMAIL", "jianghu at gmail dot com")], "english spoken forms"),
    # names
    ("x60", "我叫张伟东 想查一下我的账单", [("NAME", "张伟东")], "caller name"),
    ("x61", "收货人是我儿子 刘子豪", [("NAME", "刘子豪")], "third party after relation"),
    ("x62", "您好 我是陈晓东", [("NAME", "陈晓东")], "caller name after 我是"),
    ("x63", "户名是欧阳娜娜", [("NAME", "欧阳娜娜")], "compound surname"),
    ("x64", "免贵姓王 王先生", [("NAME", "王先生")], "surname + title for the caller"),
    ("x65", "联系人写我爸 孙建平 电话不变", [("NAME", "孙建平")], "contact person"),
    # addresses
    ("x70", "收货地址是 成都市锦江区红星路三段一百零六号 二单元 五楼", [("ADDRESS", "成都市锦江区红星路三段一百零六号 二单元 五楼")],
     "road with 段"),
    ("x71", "我住在天津市南开区卫津路九十四号 三单元七零二", [("ADDRESS", "天津市南开区卫津路九十四号 三单元七零二")],
     "unit and room"),
    ("x72", "寄到河南省周口市郸城县汲冢镇李楼村三组二十六号", [("ADDRESS", "河南省周口市郸城县汲冢镇李楼村三组二十六号")],
     "rural"),
    ("x73", "送到武汉市武昌区中南路14号院2号楼3单元1101", [("ADDRESS", "武汉市武昌区中南路14号院2号楼3单元1101")],
     "arabic"),
    ("x74", "我家是合肥蜀山区绿地蓝海 五栋一单元九零二", [("ADDRESS", "合肥蜀山区绿地蓝海 五栋一单元九零二")],
     "compound without road"),
    ("x75", "寄到珠海香洲区情侣中路8号 海湾花园 呃 5栋2203", [("ADDRESS", "珠海香洲区情侣中路8号 海湾花园 呃 5栋2203")],
     "filler inside"),
    # negatives
    ("n01", "这个月的月租是五十八块", [], "negative: amount"),
    ("n02", "我是二零一八年十月办的卡", [], "negative: date"),
    ("n03", "我打过95533了 他们让我找你们", [], "negative: hotline"),
    ("n04", "订单编号 4521 8830 1196 4472", [], "negative: order number"),
    ("n05", "快递单号是YT2398471125563", [], "negative: tracking number"),
    ("n06", "退货单号 三八二九 幺零四七", [], "negative: return number"),
    ("n07", "客服热线是不是400 610 5566", [], "negative: 400 number"),
    ("n08", "我的积分有一万两千多", [], "negative: points"),
    ("n09", "流量超了两个G 扣了我二十块", [], "negative: quantity and amount"),
    ("n10", "我在深圳宝安区这边", [], "negative: district only"),
    ("n11", "那个王经理说可以退", [], "negative: staff"),
    ("n12", "你们工号1093的那个客服", [], "negative: agent number"),
    ("n13", "邮编是 510630", [], "negative: postal code"),
    ("n14", "我要转5000块到我妈卡上", [], "negative: amount near a card word"),
    ("n15", "分期是12期的 每期手续费0.5%", [], "negative: instalments and rate"),
    ("n16", "我手机上面收不到验证码", [], "negative: mention without value"),
    ("n17", "上次打过12345投诉", [], "negative: public hotline"),
    ("n18", "航班是CA1832 晚上七点的", [], "negative: flight"),
    ("n19", "房间号1206 前台说没有包裹", [], "negative: bare room"),
    ("n20", "我是去年3月15号开的户", [], "negative: date"),
    ("n21", "这个套餐每个月一百九十九", [], "negative: price"),
    ("n22", "一般都是下午一点以后才有人", [], "negative: words containing numerals"),
    ("n23", "交易流水号是 20240915 3382 7710", [], "negative: transaction serial"),
    ("n24", "密码改成了852963 还是登不上", [], "negative: password (not a labelled type)"),
    ("n25", "我要买华为P60 还有没有货", [], "negative: product"),
    ("n26", "还款日是每个月8号 额度是5万", [], "negative: date and limit"),
    # split across utterances
    ("s01", "我的手机号是一五二", [("PHONE", "一五二")], "split PHONE part 1/3"),
    ("s01", "零七四九", [("PHONE", "零七四九")], "split PHONE part 2/3"),
    ("s01", "三八一六", [("PHONE", "三八一六")], "split PHONE part 3/3"),
    ("s02", "卡号我念一下啊 6228 4801", [("BANK_CARD", "6228 4801")], "split BANK_CARD part 1/2"),
    ("s02", "稍等 我找一下眼镜", [], "context turn inside a dictation"),
    ("s02", "8159 0830 160", [("BANK_CARD", "8159 0830 160")], "split BANK_CARD part 2/2; 19 digits; Luhn ok"),
    ("s03", "身份证号 四二零一零六", [("ID_CARD", "四二零一零六")], "split ID_CARD part 1/3"),
    ("s03", "一九七五零八二二", [("ID_CARD", "一九七五零八二二")], "split ID_CARD part 2/3; looks like a date"),
    ("s03", "九七零八 对", [("ID_CARD", "九七零八")], "split ID_CARD part 3/3"),
    ("s04", "验证码是 七九", [("VERIFICATION_CODE", "七九")], "split VERIFICATION_CODE part 1/2"),
    ("s04", "四六零三", [("VERIFICATION_CODE", "四六零三")], "split VERIFICATION_CODE part 2/2"),
    ("s05", "地址改一下 改到广州市天河区体育西路", [("ADDRESS", "广州市天河区体育西路")], "split ADDRESS part 1/2"),
    ("s05", "一百零八号 嗯 二十三楼", [("ADDRESS", "一百零八号 嗯 二十三楼")], "split ADDRESS part 2/2"),
    ("s06", "邮箱是 zhoujie", [("EMAIL", "zhoujie")], "split EMAIL part 1/2"),
    ("s06", "1988 艾特 163 点 com", [("EMAIL", "1988 艾特 163 点 com")], "split EMAIL part 2/2"),
    ("s07", "车牌号是鲁B", [("LICENSE_PLATE", "鲁B")], "split LICENSE_PLATE part 1/2"),
    ("s07", "3N7Q2", [("LICENSE_PLATE", "3N7Q2")], "split LICENSE_PLATE part 2/2"),
    ("s08", "幺三七 幺八二九", [("PHONE", "幺三七 幺八二九")], "split PHONE part 1/2; cue comes later"),
    ("s08", "六五四零 这是我手机号", [("PHONE", "六五四零")], "split PHONE part 2/2"),
    ("s09", "订单号是 三三八二 九一七七", [], "negative: order number part 1/2"),
    ("s09", "幺零四五 六六二三", [], "negative: order number part 2/2 (business identifier)"),
    ("s10", "收件人写我妈 赵桂兰", [("NAME", "赵桂兰")], "third-party name"),
    ("s10", "她电话是 一八九 零二七三", [("PHONE", "一八九 零二七三")], "split PHONE part 1/2"),
    ("s10", "四四一六", [("PHONE", "四四一六")], "split PHONE part 2/2"),
    ("s11", "护照号码 G 三八", [("PASSPORT", "G 三八")], "split PASSPORT part 1/2"),
    ("s11", "二七 六一九 零五", [("PASSPORT", "二七 六一九 零五")], "split PASSPORT part 2/2"),
    ("s12", "我的身份证号", [], "cue alone"),
    ("s12", "我念一下啊", [], "context turn"),
    ("s12", "三一零一", [("ID_CARD", "三一零一")], "split ID_CARD part 1/4"),
    ("s12", "零四一九八八", [("ID_CARD", "零四一九八八")], "split ID_CARD part 2/4"),
    ("s12", "零二一五", [("ID_CARD", "零二一五")], "split ID_CARD part 3/4"),
    ("s12", "四四一七", [("ID_CARD", "四四一七")], "split ID_CARD part 4/4"),
    ("s13", "邮箱地址是", [], "cue alone"),
    ("s13", "wangxiaoqiang", [("EMAIL", "wangxiaoqiang")], "split EMAIL part 1/2"),
    ("s13", "艾特 foxmail 点 com", [("EMAIL", "艾特 foxmail 点 com")], "split EMAIL part 2/2"),
    ("x14", "我的邮箱是 liuyang 点 work 艾特 gmail 点 com", [("EMAIL", "liuyang 点 work 艾特 gmail 点 com")],
     "spoken dot inside the local part"),
    ("x15", "您好 我这边是李娟娟 想咨询一下", [("NAME", "李娟娟")], "caller name after 我这边是"),
    ("x16", "我的号码 一八九 一零零八 六九九九 你们的热线一零零八六我也打了", [("PHONE", "一八九 一零零八 六九九九")],
     "private number and a hotline in one utterance"),
    ("x17", "收货人 陈思思 电话一八八 二一三四 五五六七 地址北京市朝阳区建国路八十八号 SOHO现代城 五号楼 一二零六",
     [("NAME", "陈思思"), ("PHONE", "一八八 二一三四 五五六七"), ("ADDRESS", "北京市朝阳区建国路八十八号 SOHO现代城 五号楼 一二零六")],
     "name, phone and address in one utterance"),
    ("n27", "订单尾号是8831的那个", [], "negative: 尾号 of an order"),
    ("n28", "客户经理工号是一零八九", [], "negative: staff number"),
    ("n29", "他的QQ是287461925", [], "negative: QQ number (not a labelled type)"),
]


def main() -> None:
    lines = ["id\tcall\tturn\ttext\tentities\tnote"]
    turns: dict[str, int] = {}
    for n, (call, text, ents, note) in enumerate(ROWS, 1):
        for _, span in ents:
            if text.count(span) != 1:
                raise ValueError(f"{span!r} must occur exactly once in {text!r}")
        turns[call] = turns.get(call, 0) + 1
        entities = json.dumps([{"type": t, "text": s} for t, s in ents], ensure_ascii=False)
        lines.append(f"ex-{n:03d}\t{call}\t{turns[call]}\t{text}\t{entities}\t{note}")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(ROWS)} rows to {OUT}")


if __name__ == "__main__":
    main()
