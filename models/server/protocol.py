"""The Open Inference Protocol (KServe / Triton "V2") REST messages: parse an infer request, build the answer.

Only the protocol lives here (no HTTP server, no model): :func:`parse_infer_request` validates a JSON infer
body against a model's signature and raises :class:`InferError` (HTTP 400) naming the field, the bad value and
what is allowed; :func:`infer_response` builds the JSON answer from the model's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

#: outputs every served classifier has, with their V2 datatypes
OUTPUTS = {"label": "INT64", "probabilities": "FP32"}


class InferError(ValueError):
    """An inference request that breaks the protocol or the model's signature (HTTP 400)."""


@dataclass(frozen=True)
class InferRequest:
    X: np.ndarray
    outputs: list[str]
    id: str | None


_F32_MAX = float(np.finfo(np.float32).max)


def parse_infer_request(
    body: bytes, input_name: str, n_features: int, outputs: dict[str, str]
) -> InferRequest:
    """Validate a V2 JSON infer body against a model taking float32 ``input_name`` [N, n_features].

    ``data`` may be flat (row-major, as the protocol says) or nested by row. Raises InferError naming the
    field, the bad value and what is allowed: malformed JSON, wrong input name / datatype / shape, data
    that are not numbers, non-finite values or values beyond float32, unknown output names.
    """
    try:
        doc = orjson.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise InferError(f"body is not valid JSON: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or len(doc["inputs"]) != 1:
        raise InferError("body must be an object whose 'inputs' is a list of exactly one tensor")
    tensor = doc["inputs"][0]
    if not isinstance(tensor, dict):
        raise InferError("inputs[0] must be an object with name, shape, datatype, data")
    if tensor.get("name") != input_name:
        raise InferError(f"inputs[0].name = {tensor.get('name')!r}: allowed: {input_name!r}")
    if tensor.get("datatype") != "FP32":
        raise InferError(f"inputs[0].datatype = {tensor.get('datatype')!r}: allowed: 'FP32'")
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(type(d) is int for d in shape)
        or shape[0] < 1
        or shape[1] != n_features
    ):
        raise InferError(f"inputs[0].shape = {shape!r}: allowed: [N, {n_features}] with N >= 1")
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InferError("inputs[0].data must be a list of numbers")
    if data and isinstance(data[0], list):
        data = [v for row in data if isinstance(row, list) for v in row]
    if len(data) != shape[0] * shape[1]:
        raise InferError(f"inputs[0].data has {len(data)} values; shape {shape} needs {shape[0] * shape[1]}")
    if not all(type(v) is float or type(v) is int for v in data):
        raise InferError("inputs[0].data must hold only numbers (no strings, booleans, nulls or lists)")
    X64 = np.asarray(data, dtype=np.float64)
    if not np.all(np.abs(X64) <= _F32_MAX):  # also false for NaN and +-inf
        raise InferError(
            "inputs[0].data holds NaN, infinite or beyond-float32 values; allowed: finite numbers"
        )
    wanted = doc.get("outputs")
    if wanted is None:
        names = list(outputs)
    elif isinstance(wanted, list) and all(isinstance(o, dict) for o in wanted):
        names = [o.get("name") for o in wanted]
        bad = [n for n in names if n not in outputs]
        if bad:
            raise InferError(f"outputs name = {bad[0]!r}: allowed: {', '.join(outputs)}")
    else:
        raise InferError("outputs must be a list of objects with a name")
    rid = doc.get("id")
    return InferRequest(X64.astype(np.float32).reshape(shape), names, None if rid is None else str(rid))


def infer_response(model_name: str, version: str, out: dict[str, np.ndarray], names: list[str],
                   request_id: str | None) -> bytes:
    """The V2 JSON answer (bytes) with the outputs ``names`` of ``out`` (arrays, one row per input row)."""
    outputs = [
        {
            "name": name,
            "datatype": OUTPUTS[name],
            "shape": list(out[name].shape),
            "data": out[name].ravel().tolist(),
        }
        for name in names
    ]
    resp = {"model_name": model_name, "model_version": version, "outputs": outputs}
    if request_id is not None:
        resp["id"] = request_id
    return orjson.dumps(resp)
