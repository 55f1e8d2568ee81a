"""Everything ML: train LightGBM, export to ONNX, check parity, keep a verified registry, score with ORT."""

from models.registry import ModelIntegrityError, Registry, RegistryEntry
from models.scorer import OnnxScorer

__all__ = ["ModelIntegrityError", "OnnxScorer", "Registry", "RegistryEntry"]
