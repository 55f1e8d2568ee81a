"""A versioned model registry on disk, keyed by a hash of everything that determines the model.

Layout: ``<root>/<name>/<key>/{model.onnx, card.json, booster.txt}``; every folder at the top is a model name.
Other artefacts that belong to a model version (an evaluation cached beside it) live under ``<root>/.cache/``
(:meth:`Registry.cache_path`), so a listing of the registry is a listing of models. Entries are written to
a temporary
folder and renamed into place, so concurrent writers (sweep workers) never see half an entry. The ONNX file's
sha256 is recorded in the card and verified every time the model is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path(
    os.environ.get("PURGATORY_REGISTRY", Path(__file__).resolve().parent.parent / "results" / "registry")
)


class ModelIntegrityError(RuntimeError):
    """The ONNX file on disk does not match the sha256 recorded in its model card."""


def config_key(config: dict) -> str:
    """Stable 16-hex-digit key of a JSON-serialisable configuration."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    key: str
    path: Path
    card: dict

    @property
    def onnx_path(self) -> Path:
        return self.path / "model.onnx"

    @property
    def booster_path(self) -> Path:
        return self.path / "booster.txt"


class Registry:
    """Model registry rooted at ``root`` (default ``results/registry`` or ``$PURGATORY_REGISTRY``)."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else DEFAULT_ROOT

    def load(self, name: str, key: str) -> RegistryEntry:
        """Load an entry and verify its ONNX sha256; raises FileNotFoundError or ModelIntegrityError."""
        path = self.root / name / key
        card_path = path / "card.json"
        if not card_path.exists():
            raise FileNotFoundError(f"no model {name!r} with key {key!r} in registry {self.root}")
        card = json.loads(card_path.read_text())
        actual = sha256_file(path / "model.onnx")
        if actual != card["onnx_sha256"]:
            raise ModelIntegrityError(
                f"{path / 'model.onnx'}: sha256 {actual} does not match the model card's "
                f"{card['onnx_sha256']}"
            )
        return RegistryEntry(name, key, path, card)

    def versions(self, name: str) -> list[str]:
        base = self.root / name
        return sorted(p.name for p in base.iterdir() if (p / "card.json").exists()) if base.exists() else []

    def models(self) -> list[str]:
        """Names with at least one complete entry (``<name>/<key>/card.json``), sorted."""
        return [n for n in self._top_level() if self.versions(n)]

    def not_models(self) -> dict[str, str]:
        """Top-level folders and files that hold no model entry, each with the reason it is not one."""
        out = {}
        for name in self._top_level():
            path = self.root / name
            if not path.is_dir():
                out[name] = "a file, not a model folder"
            elif not self.versions(name):
                out[name] = "holds no model entry (<name>/<key>/card.json)"
        return out

    def _top_level(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if not p.name.startswith("."))

    def cache_path(self, kind: str, key: str, suffix: str = ".json") -> Path:
        """Where an artefact derived from a model (e.g. a cached evaluation) is kept: outside the model
        listing, under ``<root>/.cache/<kind>/``. The folder is created; the file is the caller's to write."""
        path = self.root / ".cache" / kind / f"{key}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def get_or_create(
        self, name: str, config: dict, build: Callable[[], tuple[bytes, str, dict]]
    ) -> RegistryEntry:
        """Return the entry for ``config``, building it with ``build() -> (onnx_bytes, booster_text, card)``.

        ``card`` must already hold ``onnx_sha256`` of ``onnx_bytes``.
        """
        key = config_key(config)
        try:
            return self.load(name, key)
        except FileNotFoundError:
            pass
        onnx_bytes, booster_text, card = build()
        final = self.root / name / key
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=final.parent))
        try:
            (tmp / "model.onnx").write_bytes(onnx_bytes)
            (tmp / "booster.txt").write_text(booster_text)
            (tmp / "card.json").write_text(json.dumps({**card, "key": key}, indent=2, sort_keys=True))
            try:
                os.rename(tmp, final)
            except OSError:  # another process won the race: keep its entry
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return self.load(name, key)
