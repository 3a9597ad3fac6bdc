"""World-model fidelity: how close an imagined rollout came to what was really observed. Pure Python.

The measure is deliberately simple and documented: both texts are lower-cased, their
format tags (``<information>``, ``<imaginary>`` …) removed and runs of whitespace
collapsed; the score is :class:`difflib.SequenceMatcher`'s ratio of the two strings
(2·matches / total length), in [0, 1], 1 for identical text. It is a trend to watch
per domain (a falling fidelity says the world model is drifting), not a judgement of
any single plan.
"""

from __future__ import annotations

import difflib
import re

_TAG = re.compile(r"</?[a-zA-Z_]+>")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    return _SPACE.sub(" ", _TAG.sub(" ", text.lower())).strip()


def rollout_fidelity(rollout: str | None, observation: str | None) -> float | None:
    """Similarity of an imagined rollout and the real observation; None when either is missing."""
    if not rollout or not observation:
        return None
    a, b = normalize(rollout), normalize(observation)
    if not a or not b:
        return None
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
