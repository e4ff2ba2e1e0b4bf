"""Rasa tokenizer on spaCy's rule-based tokenizers for each of our languages.

`spacy.blank(lang)` needs no trained pipeline, so it works offline, and knows
each language's punctuation and abbreviation rules better than whitespace.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import spacy
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

from bot.components.language_detector import LANGUAGE


@lru_cache(maxsize=8)
def _blank(language: str) -> spacy.language.Language:
    return spacy.blank(language)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class MultilingualTokenizer(Tokenizer):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
        }

    def tokenize(self, message: Message, attribute: str) -> list[Token]:
        text = message.get(attribute)
        language = (message.get(LANGUAGE) or {}).get("code", "en")
        doc = _blank(language).make_doc(text)
        tokens = [Token(t.text, t.idx) for t in doc if not t.is_space and not t.is_punct]
        if not tokens:  # "?" or "!!!": keep one token so featurizers have something
            tokens = [Token(text, 0)]
        return self._apply_token_pattern(tokens)
