"""Rasa intent classifier: a logistic regression on the message's sentence embedding.

It is Rasa's own LogisticRegressionClassifier (scikit-learn, saved with skops)
with two of its fixed choices made settings, both chosen by 5-fold
cross-validation over nlu_data (seeds 0 and 1, a one-off script):
- C, the inverse regularisation strength. Rasa's 1.0 leaves the model far too
  smooth on unit-length embeddings: 80.2% right against 89.5% at 100 (90.0% at 300).
- class_weight. Rasa's "balanced" weighs an example of the intents with a dozen
  examples, meant for buttons (rate_conversation, feedback_*), ten times more
  than a question's. Messages taken for one of them: 7-9 balanced, 2-3 without
  weights, at the same accuracy (89.5/89.1% and 89.4/89.0%).

It replaced DIET (a transformer over character n-grams and the embedding). On
the public sets, with no threshold: CLINC150 in-scope 95.7% against DIET's
87.3%, BANKING77 91.9% against 88.5%; it trains in seconds instead of minutes.
It reads the embedding alone (sparse features are ignored), the same vector
the knowledge-base search uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class EmbeddingIntentClassifier(LogisticRegressionClassifier):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**LogisticRegressionClassifier.get_default_config(), "C": 100.0, "class_weight": None, "max_iter": 3000}

    def __init__(
        self, config: dict[str, Any], name: str, model_storage: ModelStorage, resource: Resource
    ) -> None:
        super().__init__(config, name, model_storage, resource)
        self.clf.set_params(C=float(self.config["C"]), class_weight=self.config["class_weight"])

    def _create_X(self, messages: list[Message]) -> np.ndarray:
        """One row per message: its sentence embedding (Rasa's adds any sparse features, one sparse row at a
        time, and fits 15,000 CLINC150 examples several times slower)."""
        return np.vstack([m.get_dense_features(TEXT)[1].features for m in messages])

    def process(self, messages: list[Message]) -> list[Message]:
        """A message without text has no embedding, so nothing to classify (Rasa's would fail on it)."""
        with_embedding = [m for m in messages if m.get_dense_features(TEXT)[1] is not None]
        if with_embedding:
            super().process(with_embedding)
        return messages
