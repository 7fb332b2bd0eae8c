"""``pyface serve``: a recognition service over HTTP (the optional extra ``pyface[serve]``).

Starlette routes (:mod:`.app`) over a :class:`.service.Service` that batches the faces
of concurrent requests into one kernel call (:mod:`.batcher`), on a store of people
(:mod:`.store`: the model file itself, or a shared gallery), run by uvicorn
(:mod:`.server`). ``import pyface`` does not import this package.
"""

from .app import create_app
from .images import ImageLimits
from .service import Service
from .store import ModelPeople, SharedGallery, open_shared_gallery

__all__ = ["create_app", "ImageLimits", "Service", "ModelPeople", "SharedGallery", "open_shared_gallery"]
