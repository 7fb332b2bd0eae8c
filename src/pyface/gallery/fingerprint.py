"""The fingerprint of a model's embeddings: what binds a gallery to the model that filled it.

Two models embed a face the same way when they have the same architecture, the same
weights and the same preprocessing; the fingerprint is a SHA-256 over exactly those.
Names, thresholds and enrolled people do not enter it: renaming a trained person or
enrolling someone in the model file leaves its galleries valid.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np


def model_fingerprint(model) -> str:
    """Hex SHA-256 of ``model``'s architecture, weights and preprocessing (a FaceRecognizer)."""
    digest = hashlib.sha256()
    described = {"architecture": model.network.arch.to_dict(), "preprocessor": model.preprocessor.to_dict()}
    digest.update(json.dumps(described, sort_keys=True).encode())
    for name in sorted(model.network.params):
        value = np.ascontiguousarray(model.network.params[name], dtype=np.float32)
        digest.update(f"{name}:{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()
