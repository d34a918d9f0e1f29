"""The learned judge: n-grams of the reply and its relation to the scenario, a logistic regression.

It is distilled from labelled replies (:mod:`scoring.judge_data`), for example a capable judge's
labels. Three blocks of features, all computed with plain numpy at run time:

- TF-IDF word 1-2-grams of the whole reply (sublinear counts, L2-normalised);
- TF-IDF word 1-3-grams of the reply's opening (its first 40 words), where a correction
  ("Actually, there is no ...") or a concession ("You're right, I apologise") usually stands;
- scenario features that relate the reply to this conversation rather than describe its topic:
  TF-IDF cosine similarities of the reply (and its opening) to the correction, the false belief,
  the question and the user's last turn; how many of the correction's and of the belief's own
  words it repeats; how often it negates, and near the belief's words; its length.

The turn number is never a feature: a judge that sees it learns the training data's decay and
would then produce part of the curve it is meant to measure. The trained model is one JSON file
(gzip-compressed when its name ends in ``.gz``): vocabularies, IDF weights, the scaling of the
scenario features and the classifier's weights. Training needs scikit-learn (the ``local``
extra); judging needs numpy alone, so the judge shipped in the package
(:data:`SHIPPED_MODEL`, ``--judge learned``) works in the base install.

Modules: ``encoder`` (words, TF-IDF vocabularies), ``features`` (the scenario block), ``model`` (the
model file and scoring), ``training`` (scikit-learn, held-out measures) and ``judge``.
"""

from scoring.learned.encoder import Vocabulary
from scoring.learned.features import SCENARIO_FEATURES, Reply
from scoring.learned.judge import LearnedJudge
from scoring.learned.model import FORMAT, SHIPPED_MODEL, JudgeModel, ModelFileError
from scoring.learned.training import (
    TrainReport,
    confident_threshold,
    fit_judge_model,
    held_out_predictions,
    train_learned_judge,
)

__all__ = [
    "FORMAT",
    "SCENARIO_FEATURES",
    "SHIPPED_MODEL",
    "JudgeModel",
    "LearnedJudge",
    "ModelFileError",
    "Reply",
    "TrainReport",
    "Vocabulary",
    "confident_threshold",
    "fit_judge_model",
    "held_out_predictions",
    "train_learned_judge",
]
