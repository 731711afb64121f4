"""Text cleaning for the data pipeline (`data.clean`), and main-text extraction from whole web pages.

Each cleaning step is an entry of `CLEANERS`, a `text -> text` callable: the built-in steps are registered here
under the names of their `data.clean` flags, a plugin's through the `open_autoglm.cleaners` entry points.
`clean_text` runs on every row, so each step first makes a cheap check (a substring test or one compiled
regex search) and only does the work when the row needs it: plain text passes through almost untouched.
HTML is parsed with Resiliparse (the lexbor HTML5 parser), never with hand-written rules; the regexes
here only decide whether a row looks like HTML at all.
"""

from __future__ import annotations

import codecs
import html
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import trafilatura
from resiliparse.extract.html2text import extract_plain_text

from open_autoglm.config.data import CleanConfig
from open_autoglm.data.encoding import guess_encoding
from open_autoglm.registry import Registry

# Tag names that make a row HTML. Closing tags count in any case; opening tags of multi-letter names in lower
# or upper case (`<div>`, `<BR>`) but not Capitalised, and of single-letter names in lower case only, so that
# generics in code (`List<Map>`, `Pair<A, B>`, `Foo<P>`) are not taken for markup.
_TAG_WORDS = (
    "html head body title meta link script style noscript template iframe div span p br hr img a b i u s q "
    "em strong small big sub sup h1 h2 h3 h4 h5 h6 ul ol li dl dt dd table thead tbody tfoot tr td th "
    "caption pre code blockquote cite abbr section article header footer nav main aside figure figcaption "
    "font center tt strike del ins mark wbr"
)
_TAGS = _TAG_WORDS.split()
_OPENING_NAMES = "|".join(
    sorted({n for n in _TAGS if len(n) == 1} | {v for n in _TAGS if len(n) > 1 for v in (n, n.upper())})
)
# Attributes must be name=value, so that `a<b and c>d` is not a <b> tag with attributes "and" and "c".
_ATTRS = r"""(?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>=`]+))*"""
_LOOKS_LIKE_HTML = re.compile(
    rf"<(?:!--|(?i:!doctype\s|/(?:{'|'.join(_TAGS)})\s*>)|(?:{_OPENING_NAMES}){_ATTRS}\s*/?>)"
)
# Markdown code (a fence, or inline code holding a tag) means a row writes about markup, as instruction data
# teaching HTML does, rather than being scraped markup: such a row is left as it is.
_INLINE_CODE_TAG = re.compile(r"`[^`\n]*<[^`\n]*`")
_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
# Scraped dumps (SST-2, IMDB, AG News) lost the "&" of entities: "it#39;s", "#36;10", " quot;Hi quot;".
# Only names and code points of punctuation, symbols and spaces are repaired: "#1;" and "squot;" stay.
_BROKEN_ENTITY = re.compile(
    r"(?<!&)#(?:\d{2,5}|[xX][0-9a-fA-F]{2,4});|(?<![&\w])(?:quot|amp|lt|gt|apos|nbsp);"
)
# A pattern that starts with a literal, so fast: only rows it finds get the slower search above.
_MAYBE_BROKEN_ENTITY = re.compile(
    r";(?:(?<=quot;)|(?<=amp;)|(?<=apos;)|(?<=nbsp;)|(?<=lt;)|(?<=gt;)"
    r"|(?<=#\d\d;)|(?<=\d\d\d;)|(?<=[0-9a-fA-F]{3};)|(?<=[xX][0-9a-fA-F]{2};))"
)
_REPAIRED_CATEGORIES = ("P", "S", "Z")

# Line separators become "\n"; other controls, zero-width and bidi formatting characters go. Tab stays.
_LINE_BREAKS = re.compile("\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\xad\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb]"
)
# Zero-width (non-)joiners are part of emoji sequences (woman, ZWJ, laptop) and of Persian and Indic words,
# so they stay between two non-ASCII characters and go only beside ASCII, white space or the ends of the text.
_STRAY_JOINER = re.compile(
    "^[\u200c\u200d]+|(?<=[\x00-\x7f])[\u200c\u200d]+|[\u200c\u200d]+(?=[\x00-\x7f]|$)"
)
_MAYBE_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]"
)


def _char_ranges(codes: list[int]) -> str:
    """A regex character class body for sorted code points, consecutive ones as ranges."""
    runs: list[list[int]] = []
    for code in codes:
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return "".join(re.escape(chr(a)) + (f"-{re.escape(chr(b))}" if b > a else "") for a, b in runs)


# Kept through NFKC: superscripts and subscripts ("x²", "H₂O"), and full-width punctuation (，。！？：；（）),
# which is how Chinese is written — a model trained on "，" turned into "," would learn to write ASCII commas.
_KEPT_CODES = [
    c
    for c in range(0x80, 0x20000)
    if unicodedata.decomposition(chr(c)).startswith(("<super>", "<sub>"))
    or (0xFF01 <= c <= 0xFF65 and unicodedata.category(chr(c)).startswith("P"))
]
_KEPT_CHARS = re.compile(f"([{_char_ranges(_KEPT_CODES)}]+)")  # ranges: 3x faster than single characters

_BLANK_LINES = re.compile(r"\n{3,}")

_html_to_text = partial(
    extract_plain_text,
    preserve_formatting=True,  # block tags and <br> become line breaks, <pre> keeps its layout
    main_content=False,  # a row is a fragment: keep all of its visible text
    list_bullets=False,  # add no characters that were not in the text
    alt_texts=False,
    links=False,
    form_fields=False,
    noscript=False,
)

# Web pages with no main text are common and are reported as quarantined rows; trafilatura would also log an
# error or warning for each of them, so its logger is quietened unless the application has set its level.
if logging.getLogger("trafilatura").level == logging.NOTSET:
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

HTML_CHARSET_SNIFF_BYTES = 4096
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.IGNORECASE
)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# WHATWG: pages labelled Latin-1 or ASCII are decoded as windows-1252 (what browsers do).
_WHATWG_ALIASES = {"iso8859-1": "cp1252", "ascii": "cp1252"}


CLEANERS: Registry[Callable[[str], str]] = Registry("cleaner", entry_point_group="open_autoglm.cleaners")
# The built-in steps in the order they run, each named as its `data.clean` flag: HTML first, so that the
# characters its entities decode to are normalised too; control characters before white space, so that the
# line separators they turn into "\n" are then trimmed.
BUILTIN_CLEANERS = ("html", "nfkc", "control_chars", "whitespace", "lowercase")


@dataclass(frozen=True)
class Cleaner:
    """A built-in cleaning step as a registry entry: a `text -> text` callable like a plugin's, with the
    `name` it is registered (and switched on) by."""

    name: str
    clean: Callable[[str], str]

    def __call__(self, text: str) -> str:
        return self.clean(text)


def clean_text(text: str, options: CleanConfig) -> str:
    """`text` through the cleaners `options` turns on, in order: the built-in steps whose flags are on (HTML to
    text, NFKC, invisible characters dropped, white space normalised, lower-cased), then those `options.extra`
    names."""
    if not options.enabled:
        return text
    for name in enabled_cleaners(options):
        text = CLEANERS.get(name)(text)
    return text


def enabled_cleaners(options: CleanConfig) -> list[str]:
    """The names of the cleaners `options` turns on, in the order they run."""
    return [name for name in BUILTIN_CLEANERS if getattr(options, name)] + list(options.extra)


def html_to_text(text: str) -> str:
    """The visible text of a row that looks like HTML (tags, entities, or entities that lost their "&");
    any other row is returned as it is, so `a < b`, `x&y` and `vector<int>` are safe, and so is Markdown
    that shows HTML in code."""
    if "`" in text and ("```" in text or _INLINE_CODE_TAG.search(text)):
        return text
    if ";" in text and _MAYBE_BROKEN_ENTITY.search(text):
        text = _BROKEN_ENTITY.sub(_repair_entity, text)
    if "<" in text and _LOOKS_LIKE_HTML.search(text):
        return _html_to_text(text)  # the parser decodes the entities too
    if "&" in text:
        # Only entities ending in ";" are decoded: html.unescape alone would turn "?a=1&copy=2" into "©=2".
        return _ENTITY.sub(lambda m: html.unescape(m.group()), text)
    return text


def nfkc(text: str) -> str:
    """Unicode NFKC (full-width letters and digits become ASCII, ligatures split), except that superscripts,
    subscripts and full-width punctuation stay: NFKC would turn "x²" into "x2" and "你好，世界" into "你好,世界"."""
    if text.isascii() or unicodedata.is_normalized("NFKC", text):  # isascii: the cheapest check first
        return text
    if not _KEPT_CHARS.search(text):
        return unicodedata.normalize("NFKC", text)
    parts = _KEPT_CHARS.split(text)  # the kept characters are at the odd indices
    return "".join(p if i % 2 else unicodedata.normalize("NFKC", p) for i, p in enumerate(parts))


def drop_control_chars(text: str) -> str:
    """`text` without control, zero-width and bidi formatting characters; \\n and \\t are kept, and other line
    separators (\\r\\n, \\r, form feed, U+2028, ...) become \\n."""
    if text.isprintable() or not _MAYBE_CONTROL.search(text):  # isprintable: fast, False for \n and \t too
        return text
    text = _LINE_BREAKS.sub("\n", text)
    text = _INVISIBLE.sub("", text)
    return _STRAY_JOINER.sub("", text)


def normalise_whitespace(text: str) -> str:
    """Runs of spaces and tabs become one space, lines are trimmed, 3+ newlines become 2, ends are trimmed."""
    if "\n" not in text:
        return " ".join(text.split())
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    if "\n\n\n" in text:
        text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


CLEANERS.register(Cleaner("html", html_to_text))
CLEANERS.register(Cleaner("nfkc", nfkc))
CLEANERS.register(Cleaner("control_chars", drop_control_chars))
CLEANERS.register(Cleaner("whitespace", normalise_whitespace))
CLEANERS.register(Cleaner("lowercase", str.lower))


def page_main_text(page: str | bytes, url: str | None = None) -> str:
    """The main text of a whole web page, without navigation, menus, footers or comments; "" when it has none.

    Uses trafilatura (its default mode, with its readability/jusText fallbacks). On the 37 real pages of
    shared/data/web_warc_dolma it gave the body text of every page, while Resiliparse's main-content
    extraction, though about 15x faster (2 ms against 30 ms a page), dropped a whole bullet list that was
    the body of one page (60 characters left of 1,000) and kept a blog's sidebars and widgets (72,000
    characters against 9,000). Extraction is rare next to training, so quality wins.
    """
    if isinstance(page, bytes):
        page = decode_html(page)
    if not page.strip():
        return ""
    text = trafilatura.extract(page, url=url, include_comments=False, deduplicate=False)
    return (text or "").strip()


def decode_html(payload: bytes, declared: str | None = None) -> str:
    """Decode a web page: byte-order mark, then the charset `declared` (HTTP Content-Type), then a <meta>
    charset, then `guess_encoding`. A declared Latin-1/windows-1252 loses to valid UTF-8, a common mislabel;
    a page that fits none of its labels keeps the first one, with U+FFFD for the bytes that do not fit."""
    for bom, encoding in _BOMS:
        if payload.startswith(bom):
            return payload[len(bom) :].decode(encoding, errors="replace")
    meta = _META_CHARSET.search(payload[:HTML_CHARSET_SNIFF_BYTES])
    labelled = [
        e
        for e in (_codec(declared), _codec(meta.group(1).decode("ascii") if meta else None))
        if e is not None
    ]
    for encoding in labelled:
        if encoding == "cp1252" and not payload.isascii():
            try:
                return payload.decode("utf-8")
            except UnicodeDecodeError:
                pass
        try:
            return payload.decode(encoding)
        except UnicodeDecodeError:
            continue  # a wrong label: try the next clue
    # A few bad bytes in a labelled page are likelier than a wrong label that no other clue contradicts.
    return payload.decode(labelled[0] if labelled else guess_encoding(payload), errors="replace")


def _codec(label: str | None) -> str | None:
    """Python's name for a charset label, or None for a missing or unknown one."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None
    return _WHATWG_ALIASES.get(name, name)


def _repair_entity(match: re.Match[str]) -> str:
    entity = "&" + match.group()
    char = html.unescape(entity)
    if char == entity or not unicodedata.category(char[0]).startswith(_REPAIRED_CATEGORIES):
        return match.group()
    return entity
