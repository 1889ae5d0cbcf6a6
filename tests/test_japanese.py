"""Visitor-facing Japanese as HTML: phrases joined by <wbr>, readings (ruby) for やさしい日本語, escaped."""

from __future__ import annotations

import re

from queue_server.web.japanese import JapaneseText, _open_jtalk_words

TAGS = re.compile(r"<wbr>|</?span[^>]*>|<rt>[^<]*</rt>|</?ruby>")


def test_phrases_are_joined_by_wbr_and_the_text_is_unchanged() -> None:
    html = JapaneseText().html("お呼び出しまで、しばらくお待ちください")
    assert html == '<span class="phrases">お呼び出しまで、<wbr>しばらく<wbr>お待ちください</span>'


def test_kanji_get_their_reading_with_okurigana_outside_the_ruby() -> None:
    html = JapaneseText().html("3 番窓口へお越しください", ruby=True)
    assert "<ruby>窓口<rt>まどぐち</rt></ruby>" in html
    assert "お<ruby>越<rt>こ</rt></ruby>しください" in html
    assert TAGS.sub("", html) == "3 番窓口へお越しください"


def test_a_placeholder_is_kept_and_read_as_a_number_before_a_counter_word() -> None:
    text = JapaneseText()
    assert text.html("{n} 人 まって います", ruby=True) == \
        '<span class="phrases">{n} <ruby>人<rt>にん</rt></ruby> まって います</span>'  # not ひと
    assert "<ruby>分<rt>ふん</rt></ruby>" in text.html("だいたい {minutes} 分です", ruby=True)  # not わけ


def test_the_configured_readings_override_open_jtalk() -> None:
    assert "<ruby>他<rt>た</rt></ruby>の" in JapaneseText().html("その他のご相談", ruby=True)
    corrected = JapaneseText({"その他": "ソノホカ"}).html("その他のご相談", ruby=True)
    assert "<ruby>他<rt>ほか</rt></ruby>の" in corrected


def test_everything_is_escaped() -> None:
    html = JapaneseText().html('<img src=x onerror="alert(1)">&窓口', ruby=True).replace("<wbr>", "")
    assert "<img" not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&amp;" in html
    assert html.endswith("<ruby>窓口<rt>まどぐち</rt></ruby></span>")


def test_no_line_break_inside_a_word_with_a_reading() -> None:
    html = JapaneseText().html("電子証明書の有効期限が近いかた・新しく発行するかた", ruby=True)
    assert not re.search(r"<ruby>[^<]*<wbr>", html)
    assert TAGS.sub("", html) == "電子証明書の有効期限が近いかた・新しく発行するかた"


def test_each_text_is_analysed_once() -> None:
    text = JapaneseText()
    text.html("受付番号を確認してください", ruby=True)
    misses = _open_jtalk_words.cache_info().misses
    JapaneseText().html("受付番号を確認してください", ruby=True)  # another app (as each test makes)
    text.html("受付番号を確認してください", ruby=True)
    assert _open_jtalk_words.cache_info().misses == misses
