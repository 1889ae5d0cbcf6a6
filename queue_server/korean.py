"""Korean particles that depend on the word before them: 「3번 창구로」 but 「카드 수령으로」.

A template can't know whether the counter or procedure it names ends in a consonant (받침), so
Korean texts write the particle in its conventional two-form notation — ``(으)로``, ``을(를)``,
``이(가)``, ``은(는)``, ``과(와)`` — and :func:`resolve_particles` picks the form once the word is
filled in, from how the word ends *as read*: a Hangul syllable's final consonant, a number read
in Sino-Korean (1 일, 3 삼, 10 십 …), a Latin letter's name (L 엘, M 엠). When the word's sound
can't be told (kanji, an empty value), the notation stays: still correct, just less smooth.
``ticket_kiosk``'s page script has the same rules (``page.js``: ``resolveKoreanParticles``).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Final


class Ending(Enum):
    """How a word ends when read aloud, as far as particles care."""

    VOWEL = "vowel"
    RIEUL = "rieul"          # final ㄹ: takes 로 like a vowel, but 을/이/은/과 like a consonant
    CONSONANT = "consonant"


# particle notation → (form after a consonant, form after a vowel); ㄹ picks per ``_RIEUL_TAKES_VOWEL_FORM``.
PARTICLES: Final = {"(으)로": ("으로", "로"), "을(를)": ("을", "를"), "이(가)": ("이", "가"),
                    "은(는)": ("은", "는"), "과(와)": ("과", "와")}
_RIEUL_TAKES_VOWEL_FORM: Final = frozenset({"(으)로"})
_PATTERN: Final = re.compile("|".join(re.escape(p) for p in PARTICLES))
# Closing quotes, brackets and spaces between a word and its particle are skipped: 「카드 수령」으로.
_TRAILING: Final = " \u3000」』)）]\"'”’》〉"
# Sino-Korean digits as read: 일 이 삼 사 오 육 칠 팔 구; 0 alone is 영; 10 십, 100 백, 1000 천, 10⁴ 만.
_DIGIT_ENDING: Final = {"1": Ending.RIEUL, "2": Ending.VOWEL, "3": Ending.CONSONANT, "4": Ending.VOWEL,
                        "5": Ending.VOWEL, "6": Ending.CONSONANT, "7": Ending.RIEUL, "8": Ending.RIEUL,
                        "9": Ending.VOWEL}
# Letter names: 엘, 알 end in ㄹ; 엠, 엔 in a consonant; the rest (에이, 비, 씨 …, 에프, 에스) in a vowel.
_LETTER_ENDING: Final = {"L": Ending.RIEUL, "R": Ending.RIEUL, "M": Ending.CONSONANT, "N": Ending.CONSONANT}
_HANGUL_FIRST: Final = 0xAC00
_HANGUL_LAST: Final = 0xD7A3
_RIEUL_FINAL: Final = 8


def ending(word: str) -> Ending | None:
    """How ``word`` ends as read, or None when that can't be told from its last character."""
    word = word.rstrip(_TRAILING)
    if not word:
        return None
    last = word[-1]
    if _HANGUL_FIRST <= ord(last) <= _HANGUL_LAST:
        final = (ord(last) - _HANGUL_FIRST) % 28
        return Ending.VOWEL if final == 0 else Ending.RIEUL if final == _RIEUL_FINAL else Ending.CONSONANT
    if last.isdecimal() and last.isascii():
        # A number ending in 0 is read ending in 십/백/천/만 (or 영 for 0 itself): all consonants.
        return _DIGIT_ENDING.get(last, Ending.CONSONANT)
    if last.isascii() and last.isalpha():
        return _LETTER_ENDING.get(last.upper(), Ending.VOWEL)
    return None


def resolve_particles(text: str) -> str:
    """``text`` with each two-form particle replaced by the form its preceding word takes."""

    def choose(match: re.Match[str]) -> str:
        notation = match.group(0)
        after_consonant, after_vowel = PARTICLES[notation]
        end = ending(text[:match.start()])
        if end is None:
            return notation
        if end is Ending.VOWEL or (end is Ending.RIEUL and notation in _RIEUL_TAKES_VOWEL_FORM):
            return after_vowel
        return after_consonant

    return _PATTERN.sub(choose, text)
