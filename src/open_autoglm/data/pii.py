"""Scrub personal information from training text: e-mail, phone, PRC resident ID, bank card and IP addresses.

Each match becomes a typed placeholder (`[EMAIL]`, `[PHONE]`, `[ID]`, `[CARD]`, `[IP]`) and is counted by type.

The patterns are hand-written: no well-kept library scrubs Chinese resident IDs or mainland phone numbers,
and Microsoft Presidio is far too heavy for millions of rows. Where a number can be validated it is, and a
candidate that fails is left alone: resident IDs need the ISO 7064 MOD 11-2 check digit, a real past birth
date and a real province code; cards need the Luhn check and a first digit 2-6 (the issuers' ranges: this
keeps millisecond timestamps and ISBNs out); IPs must parse with `ipaddress`; phone numbers must be valid
for Google's libphonenumber (the `phonenumbers` package).

Phone numbers count when they are
- international (`+44 20 7946 0958`, `0086 138 0013 8000`): valid for the country they name;
- national, in the layout of one of `regions` (default CN and GB): a trunk-prefixed number (`010-12345678`,
  `(0755) 8888 6666`, `0800 1956669`), a mainland mobile (`138 0013 8000`), or one that starts with the
  region's country code without the `+` (`8613800138000`, `447801259231`). GB is in the default so that
  UK freephone and premium-rate numbers written the local way (`08000930705`, `09061701461`, common in the
  SMS spam corpus) are caught; they belong to businesses rather than people, but they identify the sender
  as much as a personal number does, and they are what a spam model should not memorise;
- a mainland landline with its area code set apart (`0571-8765432`) and a 7- or 8-digit local number, even
  where libphonenumber knows only today's longer numbers: many cities went from 7 to 8 digits, and older
  text still has the 7-digit ones.
Mainland 400/800 service lines and local numbers without an area code (`83559989`) are not phone numbers
here: the first belong to businesses, the second cannot be told from other 8-digit numbers.

Numbers are only read whole: a digit run glued to a letter or, by a decimal point, to another digit run is
never a match, so `v1.2.3`, order codes and prices stay (a comma does not glue: after NFKC a Chinese list
"13800138000，13900139000" has an ASCII comma). Digit runs joined by single spaces, hyphens, brackets or a
"+" form one span, and each span is read left to right, longest match first (ID before card before phone
at the same length): one number is never counted as two types. E-mail runs first (so `13800138000@qq.com`
is one e-mail), then IPv6 and IPv4 (an IP inside an address stays part of the e-mail), then the digit
spans. A text is scrubbed again while a round finds something, so that scrubbing twice changes nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from datetime import date
from functools import lru_cache
from typing import NamedTuple

import phonenumbers

PLACEHOLDERS = {"email": "[EMAIL]", "phone": "[PHONE]", "id": "[ID]", "card": "[CARD]", "ip": "[IP]"}
PII_TYPES = tuple(PLACEHOLDERS)  # the names of `data.pii.types`
DEFAULT_REGIONS = ("CN", "GB")
MAX_GROUPS = 6  # digit groups one number may span: "+44 (0)20 7946 0958" has 5
MAX_ROUNDS = 16  # scrubbing rounds per text: real text needs one, or two when matches touch

_NEEDS_WORK = re.compile(r"[0-9@]")  # without a digit or an '@' nothing can match
# seven digits with at most two separator characters between each: the least a phone number has
_LONG_NUMBER = re.compile(r"[0-9](?:[ ()+\-]{0,2}[0-9]){6}")

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-@])"
    r"[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*"
    r"@(?:"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"  # a domain with a letter TLD
    r"|\[?[0-9]{1,3}(?:\.[0-9]{1,3}){3}\]?"  # or an IPv4 literal
    r")(?![A-Za-z0-9\-])"
)
_IPV4 = re.compile(r"(?<![0-9A-Za-z.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9A-Za-z]|\.[0-9])")
_IPV6 = re.compile(
    r"(?<![0-9A-Za-z:.])"
    r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}"
    r"(?:(?<=:)[0-9]{1,3}(?:\.[0-9]{1,3}){3})?"  # an IPv4 tail: ::ffff:192.0.2.1
    r"(?![0-9A-Za-z:]|\.[0-9])"
)

# A span: digit groups joined by one space or hyphen, by brackets ("+1 (415) 555-2671") or by the "+" of a
# country code. A group may end in the X check digit of a resident ID. A span never starts glued to a
# letter, a digit or a decimal point.
_SPAN = re.compile(
    r"(?<![0-9A-Za-z+])(?<![0-9]\.)"
    r"(?=[0-9()+ \-]{7})"  # cheap: skips the short numbers of ordinary text
    r"(?:\(\+|\+|\()?"
    r"[0-9](?:[0-9]|(?:\)[ \-]?\(?\+?|[ \-]\(?\+?|\(\+?|\+)(?=[0-9]))*"
    r"(?:[Xx](?![0-9A-Za-z]))?"
)
_GROUP = re.compile(r"[0-9]+[Xx]?")
_GLUED_AFTER = re.compile(r"[A-Za-z]|\.[0-9]")  # not ",": "13800138000,13900139000" is two phones

_ID_LAYOUT = re.compile(r"[1-8][0-9]{5}(?P<s>[ \-]?)[0-9]{8}(?P=s)[0-9]{3}[0-9Xx]|[1-8][0-9]{14}")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"  # check character for each remainder mod 11
# the first two digits: a province, Taiwan (71), or a Hong Kong / Macau / Taiwan residence permit (81-83)
_PROVINCES = frozenset(
    str(code)
    for first, last in ((11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65), (71, 71), (81, 83))
    for code in range(first, last + 1)
)
_CARD_LAYOUT = re.compile(
    r"[2-6][0-9]{12,18}"
    r"|[2-6][0-9]{3}(?P<s>[ \-])[0-9]{4}(?P=s)[0-9]{4}(?P=s)(?:[0-9]{4}(?:(?P=s)[0-9]{1,3})?|[0-9]{1,3})"
    r"|3[0-9]{3}(?P<a>[ \-])[0-9]{6}(?P=a)[0-9]{5}"  # American Express 4-6-5
)
# a mainland landline with its area code set apart: (0755) 8888 6666, 0571-8765432
_CN_LANDLINE = re.compile(r"\(?(0[1-9][0-9]{1,2})(?:\)[ \-]?|[ \-])[2-9][0-9]{2,3}[ \-]?[0-9]{4}")


class ScrubResult(NamedTuple):
    """The scrubbed text and what was replaced; unpacks as `text, counts = scrub(...)`."""

    text: str
    counts: Counter[str]  # type -> matches replaced


def scrub(
    text: str, types: Collection[str] = PII_TYPES, *, regions: Sequence[str] = DEFAULT_REGIONS
) -> ScrubResult:
    """`text` with every match of `types` replaced by its placeholder, and the matches counted by type.

    `regions` (ISO 3166 codes) say whose national layouts local phone numbers are read in.
    """
    return build_scrubber(tuple(types), tuple(regions))(text)


@lru_cache(maxsize=32)
def build_scrubber(types: tuple[str, ...], regions: tuple[str, ...] = DEFAULT_REGIONS) -> PiiScrubber:
    """The scrubber for one choice of types and regions (cached: `scrub` is called once per row)."""
    return PiiScrubber(types, regions)


class PiiScrubber:
    """Replaces personal information of the given types; call it on one text at a time."""

    def __init__(self, types: Collection[str] = PII_TYPES, regions: Sequence[str] = DEFAULT_REGIONS) -> None:
        unknown = set(types) - set(PII_TYPES)
        if unknown:
            raise ValueError(f"unknown PII types {sorted(unknown)}; known: {', '.join(PII_TYPES)}")
        for region in regions:
            if region not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"unknown phone region {region!r} (use ISO 3166 codes such as CN, GB)")
        self.types = frozenset(types)
        self.regions = tuple(regions)
        self._country_codes = {str(phonenumbers.country_code_for_region(r)): r for r in self.regions}
        self._today = date.today()
        self._reads_numbers = bool(self.types & {"id", "card", "phone"})

    def __call__(self, text: str) -> ScrubResult:
        counts: Counter[str] = Counter()
        if not self.types or not _NEEDS_WORK.search(text):
            return ScrubResult(text, counts)
        # A match can hide a neighbour it touches: in "13800138000+44 20 7946 0958" the second number
        # starts glued to the first. Once the first is a placeholder the second stands alone, so scrub
        # again while a round finds something (each match takes a digit or an '@' away, so this ends;
        # only rows that had something pay for the extra round).
        found = 0
        for _ in range(MAX_ROUNDS):
            text = self._scrub_once(text, counts)
            if counts.total() == found:
                break
            found = counts.total()
        return ScrubResult(text, counts)

    def _scrub_once(self, text: str, counts: Counter[str]) -> str:
        if "email" in self.types and "@" in text:
            text = _replace(_EMAIL, text, lambda m: "email", counts)
        if "ip" in self.types:  # the counts spare most rows a regex scan: IPv6 needs "::" or 7 colons
            if "::" in text or text.count(":") >= 6:
                text = _replace(_IPV6, text, _ipv6_kind, counts)
            if text.count(".") >= 3:
                text = _replace(_IPV4, text, _ipv4_kind, counts)
        if self._reads_numbers and _LONG_NUMBER.search(text):
            text = self._replace_numbers(text, counts)
        return text

    def _replace_numbers(self, text: str, counts: Counter[str]) -> str:
        pieces: list[str] = []
        done = 0  # text[:done] is in pieces
        for span in _SPAN.finditer(text):
            if span.end() - span.start() < 7:
                continue  # too short for any of the three
            groups = [(g.start(), g.end()) for g in _GROUP.finditer(text, span.start(), span.end())]
            if _GLUED_AFTER.match(text, span.end()):
                groups.pop()  # the last run goes on as a word or a decimal: it is no number of ours
            ends = [0]  # ends[k]: digits in the first k groups
            for start, end in groups:
                ends.append(ends[-1] + end - start)
            i = 0
            while i < len(groups):  # the longest match starting at group i, if any, else the next i
                found = None
                j = min(len(groups), i + MAX_GROUPS) - 1
                while found is None and j >= i and ends[j + 1] - ends[i] >= 7:
                    found = self._classify(text, span.start(), groups, i, j, ends[j + 1] - ends[i])
                    j -= 1
                if found is None:
                    i += 1
                    continue
                kind, start, end = found
                pieces += [text[done:start], PLACEHOLDERS[kind]]
                done = end
                counts[kind] += 1
                i = j + 2
        return "".join(pieces) + text[done:] if pieces else text

    def _classify(
        self, text: str, span_start: int, groups: list[tuple[int, int]], i: int, j: int, digits: int
    ) -> tuple[str, int, int] | None:
        """What groups i..j (`digits` digits) are, with the characters to replace; None when nothing."""
        start, end = groups[i][0], groups[j][1]
        bare = text[start:end]
        if (
            "id" in self.types
            and digits in (15, 18)
            and _ID_LAYOUT.fullmatch(bare)
            and _is_resident_id(re.sub(r"[ \-]", "", bare), self._today)
        ):
            return "id", start, end
        if bare[-1] in "Xx":
            return None
        if (
            "card" in self.types
            and 13 <= digits <= 23
            and _CARD_LAYOUT.fullmatch(bare)
            and _is_card(re.sub(r"[ \-]", "", bare))
        ):
            return "card", start, end
        if "phone" in self.types and digits <= 17:
            # take in the "+" before the first group, and a "(" whose ")" comes within the number
            while start > span_start and text[start - 1] in "(+":
                start -= 1
            if text[start] == "(" and ")" not in text[start:end]:
                start += 1  # "(13800138000)" keeps its brackets
            candidate = text[start:end]
            if self._is_phone(candidate, re.sub(r"[^0-9]", "", candidate)):
                return "phone", start, end
        return None

    def _is_phone(self, candidate: str, digits: str) -> bool:
        if candidate.lstrip("(").startswith("+"):
            return _valid_phone(candidate, None)
        if digits.startswith("00"):  # the international prefix of CN, GB and most of the world
            return _valid_phone("+" + candidate.lstrip("(")[2:], None)
        if digits[0] == "0":  # trunk prefix: a national number
            if any(_valid_phone(candidate, region) for region in self.regions):
                return True
            return "CN" in self.regions and _is_old_cn_landline(candidate)
        if digits[0] == "1":
            return len(digits) == 11 and "CN" in self.regions and _valid_phone(candidate, "CN")
        for code, region in self._country_codes.items():
            if digits.startswith(code) and len(digits) > len(code) + 6:
                return _valid_phone(candidate, region, country_code=int(code))
        return False


def _replace(
    pattern: re.Pattern[str], text: str, kind_of: Callable[[re.Match[str]], str | None], counts: Counter[str]
) -> str:
    def substitute(match: re.Match[str]) -> str:
        kind = kind_of(match)
        if kind is None:
            return match.group()
        counts[kind] += 1
        return PLACEHOLDERS[kind]

    return pattern.sub(substitute, text)


def _ipv4_kind(match: re.Match[str]) -> str | None:
    try:
        ipaddress.IPv4Address(match.group())  # octets 0-255, no leading zeros
    except ValueError:
        return None
    return "ip"


def _ipv6_kind(match: re.Match[str]) -> str | None:
    value = match.group()
    if "::" not in value and value.count(":") < 6:
        return None  # too few groups: a time (12:30:45), a MAC address; saves ipaddress's slow exception
    if not any(c.isdigit() for c in value):
        return None  # "dead::beef" and "Bad::Cafe" are words around a C++ scope, not addresses
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return None
    return "ip"


def _is_resident_id(number: str, today: date) -> bool:
    """An 18-character PRC resident ID (MOD 11-2 check digit) or a 15-digit one from before 1999."""
    if number[:2] not in _PROVINCES:
        return False
    if len(number) == 15:
        return _is_past_date("19" + number[6:12], today)
    if not _is_past_date(number[6:14], today):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == number[17].upper()


def _is_past_date(yyyymmdd: str, today: date) -> bool:
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return date(1900, 1, 1) <= born <= today


def _is_card(number: str) -> bool:
    if len(set(number)) == 1:
        return False  # 0000 0000 0000 0000 passes Luhn
    return luhn_ok(number)


def luhn_ok(number: str) -> bool:
    """The Luhn check of card numbers: doubling every second digit from the right, the sum ends in 0."""
    total = 0
    for position, char in enumerate(reversed(number)):
        d = ord(char) - 48
        if position % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _valid_phone(candidate: str, region: str | None, country_code: int | None = None) -> bool:
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return False
    if number.extension or (country_code is not None and number.country_code != country_code):
        return False
    return phonenumbers.is_valid_number(number)


def _is_old_cn_landline(candidate: str) -> bool:
    match = _CN_LANDLINE.fullmatch(candidate)
    return match is not None and _is_cn_area_code(match.group(1))


@lru_cache(maxsize=1024)
def _is_cn_area_code(code: str) -> bool:
    """Whether libphonenumber knows `code` (e.g. "0571") as a mainland area code: some local number validates."""
    samples = (f"{first}{rest}" for first in "23456789" for rest in ("1234567", "123456"))
    return any(_valid_phone(code + sample, "CN") for sample in samples)
