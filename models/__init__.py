"""Everything ML: train LightGBM, export to ONNX, check parity, keep a verified registry, score with onnxruntime."""

from models.registry import ModelIntegrityError, Registry, RegistryEntry
from models.scorer import OnnxScorer

__all__ = ["ModelIntegrityError", "OnnxScorer", "Registry", "RegistryEntry"]
