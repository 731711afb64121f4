"""PII scrubbing: crafted cases in Chinese and English, no false positives on ordinary numbers, properties, real data."""

import csv
import re
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from open_autoglm.config.data import PII_TYPES as CONFIG_PII_TYPES
from open_autoglm.data.pii import PII_TYPES, PLACEHOLDERS, PiiScrubber, luhn_ok, scrub

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"  # CI has shared/ beside the repo
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def resident_id(province: str, rest: str, born: date, sequence: str) -> str:
    """An 18-character ID with its ISO 7064 MOD 11-2 check character (computed here, not by the module)."""
    body = f"{province}{rest}{born:%Y%m%d}{sequence}"
    total = sum(int(d) * (2 ** (17 - k) % 11) for k, d in enumerate(body))
    return body + "10X98765432"[total % 11]


def with_luhn_digit(body: str) -> str:
    for check in "0123456789":
        if luhn_ok(body + check):
            return body + check
    raise AssertionError("some check digit always works")


def test_placeholders_cover_the_config_types():
    assert set(PII_TYPES) == set(CONFIG_PII_TYPES) == set(PLACEHOLDERS)


@pytest.mark.parametrize(
    ("text", "expected", "counts"),
    [
        # e-mail
        ("联系zhang.san+tag@mail.example.com.cn谢谢", "联系[EMAIL]谢谢", {"email": 1}),
        (
            "write to Info@Example.org, or bob_99@sub.example.co.uk.",
            "write to [EMAIL], or [EMAIL].",
            {"email": 2},
        ),
        ("QQ邮箱 13800138000@qq.com 可用", "QQ邮箱 [EMAIL] 可用", {"email": 1}),  # one e-mail, not a phone
        ("ssh root@192.168.1.10 now", "ssh [EMAIL] now", {"email": 1}),  # the IP is the e-mail's domain
        # mainland phones
        ("电话13800138000联系我", "电话[PHONE]联系我", {"phone": 1}),
        ("手机：138 0013 8000 或 138-0013-8000", "手机：[PHONE] 或 [PHONE]", {"phone": 2}),
        ("+86 138 0013 8000；0086 13800138000；8613800138000", "[PHONE]；[PHONE]；[PHONE]", {"phone": 3}),
        ("(+86) 139 1234 5678", "[PHONE]", {"phone": 1}),
        ("(13800138000)", "([PHONE])", {"phone": 1}),
        (
            "座机010-12345678，深圳(0755) 8888 6666，杭州0571-8765432",
            "座机[PHONE]，深圳[PHONE]，杭州[PHONE]",
            {"phone": 3},
        ),
        ("lines: 0791-2878108 / 0311-86911999", "lines: [PHONE] / [PHONE]", {"phone": 2}),
        # international and UK
        ("call +1 415-555-2671 or +44 20 7946 0958", "call [PHONE] or [PHONE]", {"phone": 2}),
        ("Tokyo +81 3-1234-5678, HK +852 2345 6789", "Tokyo [PHONE], HK [PHONE]", {"phone": 2}),
        ("+44 (0)20 7946 0958", "[PHONE]", {"phone": 1}),
        (
            "Call 09061701461 now or 0808 145 4742 (10p/min)",
            "Call [PHONE] now or [PHONE] (10p/min)",
            {"phone": 2},
        ),
        ("U 447801259231 have won", "U [PHONE] have won", {"phone": 1}),
        ("ring 8 08001950382 today", "ring 8 [PHONE] today", {"phone": 1}),  # the 8 stays
        # resident IDs
        ("身份证号11010519491231002X。", "身份证号[ID]。", {"id": 1}),
        ("ID 110101199003074514 and 110101 19900307 4514", "ID [ID] and [ID]", {"id": 2}),
        ("旧证110101900307451", "旧证[ID]", {"id": 1}),  # 15 digits, born 1990-03-07
        # cards
        ("卡号 4111 1111 1111 1111，6225-7600-0000-0005", "卡号 [CARD]，[CARD]", {"card": 2}),
        ("pay with 4111111111111111 or 378282246310005", "pay with [CARD] or [CARD]", {"card": 2}),
        ("Amex 3782 822463 10005", "Amex [CARD]", {"card": 1}),
        # IPs
        ("server 192.168.1.1:8080 and 8.8.8.8.", "server [IP]:8080 and [IP].", {"ip": 2}),
        ("v6 2001:db8::1, fe80::1 and ::ffff:192.0.2.1", "v6 [IP], [IP] and [IP]", {"ip": 3}),
        ("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334 end", "full [IP] end", {"ip": 1}),
        # several at once, counted by type
        (
            "张三，身份证110101199003074514，手机13800138000，邮箱zs@163.com，卡6222021234567890128，IP 10.0.0.1",
            "张三，身份证[ID]，手机[PHONE]，邮箱[EMAIL]，卡[CARD]，IP [IP]",
            {"id": 1, "phone": 1, "email": 1, "card": 1, "ip": 1},
        ),
        ("13800138000 4111 1111 1111 1111", "[PHONE] [CARD]", {"phone": 1, "card": 1}),
        # touching matches (NFKC turns "，" into ","): each is read once the one before is a placeholder
        ("电话:13800138000,13900139000.", "电话:[PHONE],[PHONE].", {"phone": 2}),
        ("13800138000+44 20 7946 0958", "[PHONE][PHONE]", {"phone": 2}),
        ("a@b.com+c@d.com", "[EMAIL][EMAIL]", {"email": 2}),
    ],
)
def test_replaces_and_counts(text, expected, counts):
    result = scrub(text)
    assert result.text == expected
    assert result.counts == Counter(counts)


NOT_PII = [
    "¥1,299.00，$19.99，3999元，€1.234,56",
    "2024-05-01，2024年5月1日，20240501，2008/08/01，2008.02.23",
    "12:30:45，8:00-14:30,17:00-22:30，会议10:00开始",
    "v1.2.3, Python 3.10.12, 1.2.3.4.5",
    "1999年，50%，打分9/10，第3名",
    "房价每平米38000元，共120平方米",
    "订单号 110101199003074515",  # the ID's check digit is wrong
    "订单号 110101199302304514",  # Feb 30th
    "order 4111111111111112",  # fails Luhn
    "ref 41111111111111110 and x4111111111111111",  # a Luhn-valid 16 digits inside a longer run or a word
    "0000 0000 0000 0000",  # Luhn-valid, but no card
    "ISBN 978-7-111-12345-6 / 9787111123456",
    "ts 1714521600000 / 1714521600",  # timestamps
    "a@b, user@localhost, x@y.z1",  # no dotted letter domain
    "IP 256.1.1.1, 01.02.03.04, 10.0.0",  # octets out of range, leading zeros, three parts
    "dead::beef, std::vector, 00:1A:2B:3C:4D:5E",  # words, C++ scope, MAC address
    "abc13800138000 and 13800138000abc and 13800138000.5",  # glued to letters or a decimal
    "4008206666，400-820-6666",  # a service hotline, not a person
    "如家83559989",  # a local number without an area code cannot be told from other numbers
    "12345678901，1234567",  # no mobile prefix, too short
    "共 1 2 3 4 5 6 7 8 9 10 个",
]


@pytest.mark.parametrize("text", NOT_PII)
def test_leaves_ordinary_numbers_alone(text):
    assert scrub(text) == (text, Counter())


def test_only_the_chosen_types():
    text = "13800138000, a@b.com, 10.0.0.1"
    assert scrub(text, ["email"]) == ("13800138000, [EMAIL], 10.0.0.1", Counter(email=1))
    assert scrub(text, ["phone", "ip"]).text == "[PHONE], a@b.com, [IP]"
    assert scrub(text, []) == (text, Counter())


def test_an_id_disabled_is_not_read_as_another_type():
    assert scrub("110101199003074514", ["phone", "card"]).text == "110101199003074514"


def test_regions_decide_local_numbers():
    assert scrub("0808 145 4742").text == "[PHONE]"  # valid in GB only
    assert scrub("0808 145 4742", regions=["CN"]).text == "0808 145 4742"
    assert scrub("+44 808 145 4742", regions=["CN"]).text == "[PHONE]"  # international numbers need none


def test_rejects_unknown_types_and_regions():
    with pytest.raises(ValueError, match="unknown PII types"):
        scrub("x", ["email", "passport"])
    with pytest.raises(ValueError, match="unknown phone region"):
        PiiScrubber(regions=["XX"])


# ---- properties ----------------------------------------------------------------------------------------

SAFE = "abcdefghijkXYZ 你好酒店房间很干净，。！？、"  # no digits, '@', '.', ':', '+', '-' or brackets
padding = st.text(alphabet=SAFE, max_size=12)
separator = st.sampled_from([" ", "，", "：", "。", "\n", "(", ")"])
ids = st.builds(
    resident_id,
    st.sampled_from(["11", "31", "44", "51", "65", "81"]),
    st.from_regex(r"[0-9]{4}", fullmatch=True),
    st.dates(date(1900, 1, 1), date(2024, 12, 31)),
    st.from_regex(r"[0-9]{3}", fullmatch=True),
)


@st.composite
def cards(draw: st.DrawFn) -> str:
    length = draw(st.integers(13, 19))
    body = draw(st.sampled_from("23456")) + draw(st.from_regex(rf"[0-9]{{{length - 2}}}", fullmatch=True))
    number = with_luhn_digit(body)
    if length == 16 and draw(st.booleans()):
        sep = draw(st.sampled_from(" -"))
        number = sep.join(number[k : k + 4] for k in range(0, 16, 4))
    return number


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["130", "135", "139", "150", "158", "186", "189", "199"]))
    number = prefix + draw(st.from_regex(r"[0-9]{8}", fullmatch=True))
    layout = draw(st.sampled_from(["plain", "space", "hyphen", "+86"]))
    if layout == "space":
        return f"{number[:3]} {number[3:7]} {number[7:]}"
    if layout == "hyphen":
        return f"{number[:3]}-{number[3:7]}-{number[7:]}"
    return f"+86 {number}" if layout == "+86" else number


@PROPERTY
@given(padding, separator, ids, separator, padding)
def test_valid_ids_are_always_replaced(before, left, number, right, after):
    result = scrub(before + left + number + right + after)
    assert result == (before + left + "[ID]" + right + after, Counter(id=1))


@PROPERTY
@given(padding, separator, cards(), separator, padding)
def test_luhn_valid_cards_are_always_replaced(before, left, number, right, after):
    digits = re.sub(r"[ \-]", "", number)
    if len(set(digits)) == 1 or (len(digits) in (15, 18) and scrub(digits, ["id"]).counts):
        return  # all one digit is no card; one that is also a valid resident ID counts as the ID
    result = scrub(before + left + number + right + after)
    assert result == (before + left + "[CARD]" + right + after, Counter(card=1))


@PROPERTY
@given(padding, separator, mobiles(), separator, padding)
def test_mainland_mobiles_are_always_replaced(before, left, number, right, after):
    result = scrub(before + left + number + right + after)
    assert result == (before + left + "[PHONE]" + right + after, Counter(phone=1))


ordinary = st.one_of(
    st.integers(0, 10_000_000).map(lambda n: f"¥{n:,}.{n % 100:02d}"),
    st.integers(0, 100_000).map(lambda n: f"${n}.99"),
    st.integers(1, 9_999_999).map(lambda n: f"{n}元"),
    st.dates(date(1900, 1, 1), date(2100, 12, 31)).flatmap(
        lambda d: st.sampled_from(
            [f"{d:%Y-%m-%d}", f"{d.year}年{d.month}月{d.day}日", f"{d:%Y%m%d}", f"{d:%Y/%m/%d}"]
        )
    ),
    st.times().map(lambda t: f"{t:%H:%M:%S}"),
    st.tuples(st.integers(0, 20), st.integers(0, 300), st.integers(0, 300)).map(
        lambda v: f"v{v[0]}.{v[1]}.{v[2]}"
    ),
    st.integers(0, 100).map(lambda n: f"{n}%"),
    st.tuples(st.integers(0, 10), st.integers(1, 10)).map(lambda s: f"{s[0]}/{s[1]}"),
    st.integers(0, 999_999).map(str),
)


@PROPERTY
@given(st.lists(st.tuples(padding, ordinary), max_size=6), st.sampled_from(["，", "; ", " and ", "。"]))
def test_prices_dates_and_short_numbers_are_never_changed(parts, joiner):
    text = joiner.join(words + number for words, number in parts)
    assert scrub(text) == (text, Counter())


FRAGMENTS = [
    "13800138000", "138 0013 8000", "+44 20 7946 0958", "(0755) 8888 6666", "110101199003074514", "4111 1111 1111 1111",
    "4111111111111111", "a@b.com", "192.168.1.1", "2001:db8::1", "12:30:45", "2024-05-01", "¥1,299.00", "0808 145 4742",
]  # fmt: skip
noisy = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(alphabet="0123456789 -+().:@xX ab中", max_size=8)),
    max_size=8,
).map("".join)


@PROPERTY
@given(noisy)
def test_scrubbing_twice_is_scrubbing_once(text):
    once = scrub(text).text
    assert scrub(once) == (once, Counter())


@PROPERTY
@given(st.text(alphabet=st.characters(exclude_characters="0123456789@"), max_size=200))
def test_text_without_digits_or_at_comes_back_unchanged(text):
    assert scrub(text) == (text, Counter())


# ---- real data -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sms_spam_uk_numbers_and_addresses():
    path = DATA / "sms_spam" / "SMSSpamCollection"
    messages = [line.split("\t", 1)[1] for line in path.read_text(encoding="utf-8").splitlines()]
    counts: Counter[str] = Counter()
    scrubbed = []
    for message in messages:
        text, found = scrub(message)
        counts.update(found)
        scrubbed.append(text)
    assert counts["phone"] > 300  # freephone and premium-rate numbers in the spam (423 with phonenumbers 9.0)
    assert counts["email"] >= 5 and set(counts) == {"phone", "email"}
    joined = "\n".join(scrubbed)
    for number in ("09061701461", "08000930705", "0800 1956669", "yijue@hotmail.com"):
        assert number not in joined
    assert "86688" in joined  # a 5-digit short code is no phone number


@pytest.mark.slow
def test_chnsenticorp_hotel_reviews_keep_their_prices():
    with open(DATA / "chnsenticorp_htl" / "ChnSentiCorp_htl_all.csv", encoding="utf-8", newline="") as f:
        reviews = [row["review"] for row in csv.DictReader(f)]
    price = re.compile(r"[￥¥][0-9]+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?元")
    counts: Counter[str] = Counter()
    for review in reviews:
        text, found = scrub(review)
        counts.update(found)
        assert price.findall(text) == price.findall(review)
    assert set(counts) == {"phone"} and 8 <= counts["phone"] <= 12  # a few mobiles and hotel landlines
    assert scrub("大理包一天车才￥150（13988505869李").text == "大理包一天车才￥150（[PHONE]李"
