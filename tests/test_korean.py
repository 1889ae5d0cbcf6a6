"""Korean particles after a filled-in word follow how the word is read (받침), as a Korean writer would."""

from __future__ import annotations

import pytest

from queue_server.korean import resolve_particles
from queue_server.web.pages import load_catalogs, translate

# (text with the two-form notation, as a Korean reader expects it)
CASES = [
    ("3번 창구(으)로", "3번 창구로"),            # 구: vowel
    ("「카드 수령」(으)로", "「카드 수령」으로"),     # 령 ends in ㅇ, behind a closing bracket
    ("민원실(으)로", "민원실로"),                # ㄹ takes 로
    ("1(으)로", "1로"), ("2(으)로", "2로"), ("3(으)로", "3으로"), ("4(으)로", "4로"), ("5(으)로", "5로"),
    ("6(으)로", "6으로"), ("7(으)로", "7로"), ("8(으)로", "8로"), ("9(으)로", "9로"),
    ("0(으)로", "0으로"),                        # 영
    ("10(으)로", "10으로"), ("20(으)로", "20으로"), ("100(으)로", "100으로"), ("1000(으)로", "1000으로"),
    ("301(으)로", "301로"), ("A(으)로", "A로"), ("L(으)로", "L로"), ("M(으)로", "M으로"),
    ("책을(를)", "책을"), ("차을(를)", "차를"), ("물을(를)", "물을"),   # ㄹ is a consonant for 을/를
    ("번호이(가)", "번호가"), ("창구은(는)", "창구는"), ("신청과(와)", "신청과"),
    ("総合案内(으)로", "総合案内(으)로"),          # kanji: the sound can't be told; the notation stays
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_a_particle_takes_the_form_the_word_before_it_needs(text: str, expected: str) -> None:
    assert resolve_particles(text) == expected


def test_the_korean_status_page_says_where_to_go_naturally() -> None:
    catalogs = load_catalogs()
    counter = translate(catalogs, "ko", "common.counter", id="3", name="3番窓口")
    assert translate(catalogs, "ko", "status.called_body", counter=counter) == "3번 창구로 와 주십시오"
    assert translate(catalogs, "ko", "counter.done_handed_over", number="305", procedure="카드 수령") \
        == "305번을 「카드 수령」으로 인계했습니다"
