"""World-model fidelity: how much of what was really observed the rollout had imagined. Pure Python.

The measure is deliberately simple and documented: both texts are lower-cased and their format tags
(``<information>``, ``<imaginary>`` …) removed; a *word* is a run of letters, digits and ``#``
(``x=21`` is two words, ``#37`` one). The score is the share of the observation's words that the
rollout imagined, in order: the sizes of :class:`difflib.SequenceMatcher`'s matching blocks between
the two word lists, summed, over the observation's word count — in [0, 1], 1 when the rollout holds
the observation word for word wherever it sits in it (a search's imagined results list many passages;
the one that came back scores 1 if it was among them), lower the less of it was foreseen. It is a
trend to watch per domain (a falling fidelity says the world model is drifting), not a judgement of
any single plan.
"""

from __future__ import annotations

import difflib
import re

_TAG = re.compile(r"</?[a-zA-Z_]+>")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9#]+")


def normalize(text: str) -> str:
    return _SPACE.sub(" ", _TAG.sub(" ", text.lower())).strip()


def words(text: str) -> list[str]:
    """The words the measure compares (after :func:`normalize`)."""
    return _WORD.findall(normalize(text))


def rollout_fidelity(rollout: str | None, observation: str | None) -> float | None:
    """Share of the observation's words the rollout imagined, in order; None when either has no words."""
    if not rollout or not observation:
        return None
    imagined, observed = words(rollout), words(observation)
    if not imagined or not observed:
        return None
    blocks = difflib.SequenceMatcher(None, imagined, observed, autojunk=False).get_matching_blocks()
    return sum(b.size for b in blocks) / len(observed)
