"""Train -> export -> parity -> card -> registry, in one call."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import numpy as np

from models.registry import Registry, RegistryEntry
from models.train import TrainConfig


class ParityError(RuntimeError):
    """The ONNX export disagrees with the native model beyond tolerance."""


def build_model(  # noqa: PLR0917
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    feature_names: list[str],
    config: TrainConfig,
    seed: int,
    valid_fraction: float = 0.25,
    registry: Registry | None = None,
    cache_config: dict | None = None,
    groups: np.ndarray | None = None,
) -> RegistryEntry:
    """Train, export, check and register a model on ``X, y`` (see :func:`build_model_lazy`)."""
    return build_model_lazy(
        name, lambda: (X, y, groups), feature_names, config, seed, valid_fraction, registry, cache_config
    )


def build_model_lazy(  # noqa: PLR0917
    name: str,
    data: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    feature_names: list[str],
    config: TrainConfig,
    seed: int,
    valid_fraction: float = 0.25,
    registry: Registry | None = None,
    cache_config: dict | None = None,
) -> RegistryEntry:
    """Train a LightGBM model, export it to ONNX, verify parity, write a model card and register it.

    ``data()`` returns ``(X, y, groups)`` and is only called when the registry has no entry yet.
    ``cache_config`` (plus the training config and seed) keys the registry entry: the same generator
    settings give the same model without retraining. Rows are split into train / validation by a seeded
    permutation of ``groups`` (e.g. patient ids, so one patient's hours never sit on both sides) or of rows.
    """
    registry = registry or Registry()
    key_config = {
        "name": name,
        "train": dataclasses.asdict(config),
        "seed": int(seed),
        "features": list(feature_names),
        "data": cache_config or {},
    }

    def build() -> tuple[bytes, str, dict]:
        # training stack imported only when a model is actually built (registry hits stay light)
        from models.card import build_card  # noqa: PLC0415
        from models.export import check_parity, to_onnx  # noqa: PLC0415
        from models.train import train_lgbm  # noqa: PLC0415

        X, y, groups = data()
        rng = np.random.default_rng(seed)
        if groups is None:
            order = rng.permutation(len(y))
            n_valid = int(len(y) * valid_fraction)
            valid, train = np.sort(order[:n_valid]), np.sort(order[n_valid:])
        else:
            uniq = np.unique(groups)
            held = rng.permutation(uniq)[: int(len(uniq) * valid_fraction)]
            in_valid = np.isin(groups, held)
            valid, train = np.flatnonzero(in_valid), np.flatnonzero(~in_valid)
        booster = train_lgbm(X[train], y[train], feature_names, config, seed)
        onnx_bytes = to_onnx(booster, len(feature_names), name)
        parity = check_parity(booster, onnx_bytes, X[valid[:2000]])
        if not parity.ok:
            raise ParityError(f"ONNX parity failed for {name}: {parity.to_json()}")
        p_valid = booster.predict(X[valid].astype(np.float64))
        card = build_card(
            name,
            feature_names,
            X[train],
            y[train],
            y[valid],
            p_valid,
            hashlib.sha256(onnx_bytes).hexdigest(),
            key_config,
            parity.__dict__ | {"ok": parity.ok},
        )
        return onnx_bytes, booster.model_to_string(), card

    return registry.get_or_create(name, key_config, build)
