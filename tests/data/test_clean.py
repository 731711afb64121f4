"""clean_text step by step on crafted rows, page_main_text on crafted pages, decode_html on crafted bytes."""

import pytest

from open_autoglm.config.data import CleanConfig
from open_autoglm.data.clean import clean_text, decode_html, html_to_text, page_main_text

DEFAULT = CleanConfig()
ONLY_HTML = CleanConfig(nfkc=False, whitespace=False, control_chars=False)


def article(body: str, title: str = "A day at the lake") -> str:
    """A whole page: navigation, a script, an article and a footer."""
    return (
        "<!DOCTYPE html><html><head><title>Lake blog</title><script>var tracker = 'SCRIPTCODE';</script>"
        "<style>body { color: red }</style></head><body>"
        "<nav><ul><li><a href='/'>Home</a></li><li><a href='/about'>About us</a></li>"
        "<li><a href='/shop'>Shop</a></li></ul></nav>"
        f"<article><h1>{title}</h1>{body}</article>"
        "<footer><p>Copyright 2024 Lake Blog Inc. All rights reserved.</p><a href='/privacy'>Privacy</a></footer>"
        "</body></html>"
    )


STORY = (
    "<p>We left early in the morning and drove for two hours to reach the northern shore of the lake, "
    "where the water was still and the air smelled of pine.</p>"
    "<p>After a long swim we cooked lunch on a small fire and watched the boats go past, talking about "
    "the summers we spent here as children and the friends who came with us.</p>"
    "<p>In the evening the wind picked up, the clouds came in from the west, and we packed the car "
    "just before the first drops of rain began to fall on the road home.</p>"
)


@pytest.mark.parametrize(
    "text",
    [
        "a < b and c > d",
        "5 > 3",
        "x&y",
        "AT&T; Q&A",
        "see ?a=1&copy=2&not=3",  # entity names without ";" are not entities in plain text
        "vector<int> v; List<Map> m; Pair<A, B> p; Foo<P> f;",
        "#include <stdio.h>\nint main() { return a<b && c>d; }",
        "a<b and c>d",
        "I <3 you",
        "∑ x² ≤ 10 and H₂O, ∫ f(x) dx ≥ 0",
        "今天天气很好。我们去公园散步",
        "Nice 🎉🔥 👨\u200d👩\u200d👧",  # a ZWJ emoji sequence
        "<<not a tag>> and <- arrows ->",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert clean_text(text, DEFAULT) == text


@pytest.mark.parametrize(
    "text",
    [
        "Here is a table:\n\n```html\n<table>\n  <tr><td>a</td></tr>\n</table>\n```",
        "Use the `<hr>` tag &amp; some CSS.",
        '输出：`<meta charset="iso-8859-1">`',
    ],
)
def test_markdown_that_shows_html_in_code_is_left_alone(text):
    assert html_to_text(text) == text


def test_html_fragment_becomes_text_with_line_breaks():
    text = "<div><p>Hello &amp; welcome</p><p>Second <b>bold</b> para</p></div>"
    assert clean_text(text, DEFAULT) == "Hello & welcome\n\nSecond bold para"


def test_scripts_styles_noscript_and_comments_are_dropped():
    text = (
        "<p>Keep me</p><script>alert('SCRIPT')</script><style>p { color: red }</style>"
        "<noscript>NOSCRIPT</noscript><!-- COMMENT --><p>and me</p>"
    )
    cleaned = clean_text(text, DEFAULT)
    assert cleaned == "Keep me\n\nand me"


def test_imdb_style_br_tags_and_entities():
    text = "This movie was great.<br /><br />I loved it &amp; it&#39;s a <i>classic</i>."
    assert clean_text(text, DEFAULT) == "This movie was great.\n\nI loved it & it's a classic."


def test_uppercase_old_html_counts_as_html():
    assert clean_text("<B>Bold</B> and <BR>next", DEFAULT) == "Bold and\nnext"


def test_entities_without_tags_are_decoded():
    assert (
        clean_text("It&#39;s &lt;great&gt; &amp; &quot;fun&quot; &#x263A;", DEFAULT)
        == 'It\'s <great> & "fun" ☺'
    )


def test_unknown_entity_names_stay():
    assert html_to_text("a&b; c&zzzz;") == "a&b; c&zzzz;"


def test_entities_that_lost_their_ampersand_are_repaired():
    # SST-2 / IMDB / AG News dumps: "&#39;" became "#39;", "&quot;" became "quot;"
    assert clean_text("it #39;s Wall Street#39;s best quot;deal quot; at #36;10", DEFAULT) == (
        "it 's Wall Street's best \"deal \" at $10"
    )
    # Escaped markup stays text: decoded once, not parsed again
    assert clean_text("lt;b&gt;Headline lt;/b&gt;", DEFAULT) == "<b>Headline </b>"
    # Neither a code point of a letter nor part of a longer word
    assert html_to_text("item #65; squot; &#39;ok") == "item #65; squot; 'ok"


def test_html_step_honours_its_flag():
    text = "<p>kept as it is</p>"
    assert clean_text(text, CleanConfig(html=False)) == text
    assert clean_text(text, ONLY_HTML) == "kept as it is"


def test_nfkc_full_width_to_ascii():
    assert clean_text("ＡＢＣ１２３　ｘｙｚ", DEFAULT) == "ABC123 xyz"
    assert clean_text("ﬁne ﬂow", DEFAULT) == "fine flow"
    assert clean_text("ＡＢＣ", CleanConfig(nfkc=False)) == "ＡＢＣ"


def test_nfkc_keeps_superscripts_and_subscripts():
    assert clean_text("x² + y² = z² and H₂O with ＡＢ", DEFAULT) == "x² + y² = z² and H₂O with AB"


def test_chinese_punctuation_survives_nfkc_but_full_width_digits_do_not():
    text = "这家酒店的服务很好，房间也很干净！（房号：８０８）下次还会再来。"
    # Chinese is written with full-width punctuation: NFKC would teach a model to write ASCII commas.
    assert clean_text(text, DEFAULT) == "这家酒店的服务很好，房间也很干净！（房号：808）下次还会再来。"
    assert clean_text(text, CleanConfig(nfkc=False)) == text


def test_control_and_zero_width_characters_are_dropped():
    text = "zero\u200bwidth\ufeff soft\xadhyphen bell\x07 nul\x00 rtl\u200emark join\u200der"
    assert clean_text(text, DEFAULT) == "zerowidth softhyphen bell nul rtlmark joiner"


def test_control_step_keeps_newlines_tabs_and_emoji_sequences():
    family = "👨\u200d👩\u200d👧"
    text = f"a\tb\nc {family}"
    assert clean_text(text, CleanConfig(whitespace=False)) == text
    assert clean_text(text, DEFAULT) == f"a b\nc {family}"


def test_other_line_separators_become_newlines():
    assert clean_text("a\r\nb\rc\x0cd\u2028e", CleanConfig(whitespace=False)) == "a\nb\nc\nd\ne"


def test_control_step_honours_its_flag():
    text = "a\u200bb"
    assert clean_text(text, CleanConfig(control_chars=False)) == text


def test_whitespace_normalised():
    text = "  lots   of\t\tspace  \n  trimmed lines \n\n\n\n\nfew blank lines\n\n end  "
    assert clean_text(text, DEFAULT) == "lots of space\ntrimmed lines\n\nfew blank lines\n\nend"
    assert clean_text(text, CleanConfig(whitespace=False)) == text


def test_lowercase_only_when_asked():
    assert clean_text("Hello WORLD", DEFAULT) == "Hello WORLD"
    assert clean_text("Hello WORLD <b>Ｘ</b>", CleanConfig(lowercase=True)) == "hello world x"


def test_disabled_returns_the_row_untouched():
    text = "  <p>Ｘ</p>\u200b  "
    assert clean_text(text, CleanConfig(enabled=False)) == text


def test_page_main_text_drops_boilerplate():
    text = page_main_text(article(STORY))
    assert "northern shore of the lake" in text and "first drops of rain" in text
    for boilerplate in ("About us", "Copyright 2024", "SCRIPTCODE", "color: red", "<p>"):
        assert boilerplate not in text


def test_page_main_text_accepts_bytes_and_url():
    page = article(STORY.replace("lake", "lac à Genève")).encode("utf-8")
    assert "lac à Genève" in page_main_text(page, url="https://example.org/lake")


@pytest.mark.parametrize(
    "page",
    [
        "",
        "   ",
        "<html><head><script>var x = 1;</script></head><body></body></html>",
        b"<html><body><div></div></body></html>",
    ],
)
def test_page_without_main_text_gives_empty_string(page):
    assert page_main_text(page) == ""


def test_decode_html_charset_order():
    text = "Café – naïve"
    assert decode_html(text.encode("cp1252"), "windows-1252") == text
    # meta charset when HTTP says nothing
    meta = f'<html><head><meta charset="gbk"></head><body>{"中文网页"}</body></html>'
    assert "中文网页" in decode_html(meta.encode("gbk"))
    # HTTP header wins over meta
    assert "中文网页" in decode_html(meta.encode("gbk"), "gb2312")
    # a Latin-1 label on valid UTF-8 is a mislabel
    assert decode_html(text.encode("utf-8"), "iso-8859-1") == text
    # an unknown label falls back to detection
    assert decode_html(text.encode("utf-8"), "no-such-charset") == text
    # byte-order marks win
    assert decode_html(b"\xef\xbb\xbf" + text.encode("utf-8"), "latin-1") == text
    assert decode_html(b"\xff\xfe" + text.encode("utf-16-le")) == text


def test_decode_html_keeps_a_label_that_fits_all_but_a_few_bytes():
    payload = "日本語のページ".encode() + b"\xff" + "です".encode()
    assert decode_html(payload, "utf-8") == "日本語のページ\ufffdです"
