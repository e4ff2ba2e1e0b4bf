"""Put back the diacritics a Polish or Romanian customer left out, before a text is embedded.

Customers often type without them ("czy mozna placic przy odbiorze gotowka", "cat costa
livrarea"), and the small multilingual encoder places such a text far from the same
words written properly. Each word of a Polish or Romanian text that carries no
diacritics becomes the most frequent accented word of that language with the same
letters, when that word is clearly more frequent than the word as typed (wordfreq's
frequency lists, shipped inside the package): "sie" becomes "się", "gotowka" "gotówką",
"casti" "căști", while "dom" and "kot" stay as they are. The guess is
sometimes wrong ("ze sklepu" becomes "że sklepu"); that costs the encoder less than a text
without diacritics does.

Chosen by 5-fold cross-validation over the articles' sample questions, each held out with
its translations (one-off script, seeds 0/1/2, never the held-out set): right first, Polish
68.7/67.6/64.6% -> 70.8/69.0/66.7%, Romanian 66.4/66.7/65.8% -> 67.9/68.5/66.4%, all
languages 69.2/68.6/66.4% -> 69.9/69.5/67.5%; with every question's diacritics removed,
Polish 63.4/61.7% -> 70.2/69.9% (seeds 0/1). Intent accuracy, 5-fold over nlu_data (seeds
0/1): 91.1/90.7% -> 91.3/90.9%. See bot/eval/tried.md for what else was tried.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import cache
from importlib.metadata import version
from pathlib import Path

import wordfreq

LANGUAGES = ("pl", "ro")
# How many times more frequent the accented word must be than the word as typed
# (half a step on wordfreq's Zipf scale; 1 did as well, 10 a little worse, 100 worse).
MARGIN = 10**0.5
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def identity() -> str:
    """Changes whenever what this module writes could: for caches of vectors of restored texts."""
    source = Path(__file__).read_bytes() + version("wordfreq").encode()
    return hashlib.sha256(source).hexdigest()[:12]


def strip_diacritics(text: str) -> str:
    """The text without accents ("ł" has no decomposition, so it is mapped by hand)."""
    decomposed = unicodedata.normalize("NFD", text.replace("ł", "l").replace("Ł", "L"))
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


@cache
def accented_words(language: str) -> dict[str, str]:
    """For each plain spelling, the accented word to write instead (only where it clearly wins)."""
    frequencies = wordfreq.get_frequency_dict(language)  # most frequent first
    first: dict[str, str] = {}
    for word in frequencies:
        plain = strip_diacritics(word)
        if plain != word and plain not in first:
            first[plain] = word
    return {plain: word for plain, word in first.items() if frequencies[word] >= MARGIN * frequencies.get(plain, 0.0)}


def restore_diacritics(text: str, language: str | None) -> str:
    """`text` with its plain Polish or Romanian words accented; other languages' texts unchanged."""
    if language not in LANGUAGES:
        return text
    words = accented_words(language)

    def accent(match: re.Match[str]) -> str:
        word = match.group(0)
        accented = words.get(word.lower())
        if accented is None:
            return word
        if word.isupper() and len(word) > 1:
            return accented.upper()
        return accented[0].upper() + accented[1:] if word[0].isupper() else accented

    return _WORD.sub(accent, text)
