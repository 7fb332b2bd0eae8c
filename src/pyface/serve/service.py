"""What the HTTP routes ask of the recognizer, batched and off the event loop; no HTTP here.

Every call into the kernel (identification, search, verification, enrolment) runs
on one worker thread: the kernel already spreads each call over all cores, and
two calls at once would only fight for them. Decoding and preprocessing an upload
is per request, on the service's own preprocessing threads, so it overlaps the
kernel's work. Its own executor rather than the ASGI framework's thread pool: at
hundreds of requests a second, the event loop is the bottleneck, and AnyIO's
thread hand-off (cancel scopes, capacity limiter) cost a sixth of its time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os

import numpy as np

from ..data.preprocess import Preprocessor
from ..recognition.recognizer import UNKNOWN, FaceRecognizer
from .batcher import MicroBatcher
from .errors import ClientError
from .images import FacePreprocessor, ImageLimits, as_faces, decode_image
from .uploads import Upload

__all__ = ["Service"]


class Service:
    """Identification, search, verification and enrolment against ``store``, with micro-batching.

    Parameters
    ----------
    store : ModelPeople or a shared gallery
        Where the people are (see :mod:`pyface.serve.store`).
    model : FaceRecognizer
        The recognizer whose network and preprocessing the store uses; verifies pairs.
    limits : ImageLimits
        The image sizes accepted.
    max_batch : int, default 32
        Faces per kernel call at most; 1 answers one face per call.
    max_wait : float, default 0.002
        Seconds a batch waits for more faces after its first.
    detect_faces : {"auto", True, False} or None, default None
        Face detection on uploads (:class:`pyface.Preprocessor`'s ``detect_faces``); None
        does as the model was trained. False suits cameras that send face crops: no
        detector runs, which on a face crop costs several times what the network does.
    """

    def __init__(self, store, model: FaceRecognizer, *, limits: ImageLimits, max_batch: int = 32,
                 max_wait: float = 0.002, detect_faces: bool | str | None = None):
        self.store = store
        self.model = model
        self.limits = limits
        preprocessor = model.preprocessor
        if detect_faces is not None and detect_faces != preprocessor.detect_faces:
            preprocessor = Preprocessor.from_dict({**preprocessor.to_dict(), "detect_faces": detect_faces})
        self.preprocess = FacePreprocessor(preprocessor)
        self.kernel = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pyface-kernel")
        self.preprocessing = concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1,
                                                                   thread_name_prefix="pyface-preprocess")
        self.identifier = MicroBatcher(self._identify_batch, executor=self.kernel, max_batch=max_batch,
                                       max_wait=max_wait)
        self.searcher = MicroBatcher(self._search_batch, executor=self.kernel, max_batch=max_batch,
                                     max_wait=max_wait)

    async def close(self) -> None:
        await self.identifier.close()
        await self.searcher.close()
        self.kernel.shutdown(wait=True)
        self.preprocessing.shutdown(wait=True)
        self.store.close()  # after the last kernel call: a gallery's connection ends cleanly

    async def _on_kernel(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self.kernel, functools.partial(function, *args))

    # ------------------------------------------------------------------ per request

    def decode(self, upload: Upload) -> np.ndarray:
        """The uploaded image as OpenCV decodes it (call on a worker thread)."""
        return decode_image(upload.data, limits=self.limits, what=upload.label)

    def face(self, upload: Upload) -> np.ndarray:
        """The uploaded image decoded and preprocessed (call on a worker thread)."""
        return self.preprocess(self.decode(upload), upload.label)

    async def faces(self, uploads: list[Upload]) -> list[np.ndarray]:
        """The uploads decoded and preprocessed, in order, on a preprocessing thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self.preprocessing, lambda: [self.face(upload) for upload in uploads])

    # ------------------------------------------------------------------ batched on the kernel thread

    def _identify_batch(self, faces: list[np.ndarray]) -> list:
        try:
            names, scores = self.store.identify(as_faces(faces, self.model.preprocessor), threshold="auto")
        except ValueError as error:  # nobody known yet, or no threshold: the service's state, not the faces
            return [ClientError(409, str(error))] * len(faces)
        return list(zip(names.tolist(), scores.tolist()))

    def _search_batch(self, items: list[tuple[np.ndarray, int]]) -> list:
        faces, ks = zip(*items)
        try:
            names, scores = self.store.search(as_faces(list(faces), self.model.preprocessor), k=max(ks))
        except ValueError as error:
            return [ClientError(409, str(error))] * len(faces)
        return [list(zip(names[i, :k].tolist(), scores[i, :k].tolist())) for i, k in enumerate(ks)]

    @staticmethod
    def _answer(result):
        if isinstance(result, ClientError):
            raise result
        return result

    async def identify(self, face: np.ndarray, k: int | None = None) -> dict:
        """``{"name", "score", "known"}`` for one preprocessed face, and with ``k`` its top ``k`` candidates."""
        if k is None:
            name, score = self._answer(await self.identifier.submit(face))
        else:
            best, ranked = await asyncio.gather(self.identifier.submit(face), self.searcher.submit((face, k)))
            name, score = self._answer(best)
        answer = {"name": name, "score": score, "known": name != UNKNOWN}
        if k is not None:
            answer["candidates"] = [{"name": n, "score": s} for n, s in self._answer(ranked)]
        return answer

    def _verify(self, a: np.ndarray, b: np.ndarray) -> dict:
        try:
            same, score = self.model.verify(as_faces([a], self.model.preprocessor),
                                            as_faces([b], self.model.preprocessor))
        except ValueError as error:  # a model without a verification threshold
            raise ClientError(409, str(error)) from None
        return {"same": bool(same), "score": score, "threshold": self.model.verify_threshold}

    async def verify(self, a: np.ndarray, b: np.ndarray) -> dict:
        """``{"same", "score", "threshold"}`` for two preprocessed faces."""
        return await self._on_kernel(self._verify, a, b)

    # ------------------------------------------------------------------ the people

    def _enroll(self, name: str, faces: list[np.ndarray]) -> int:
        # On the kernel thread, as every change: the check and the change are one step.
        if name in self.store:  # one look-up, not every name of a large gallery
            raise ClientError(409, f"{name!r} is already known; remove them first (DELETE /people/{name})")
        try:
            return self.store.enroll(name, as_faces(faces, self.model.preprocessor))
        except ValueError as error:
            raise ClientError(409, str(error)) from None

    async def enroll(self, name: str, faces: list[np.ndarray]) -> int:
        """Enrol ``name`` from preprocessed faces; the number of images enrolled."""
        return await self._on_kernel(self._enroll, name, faces)

    def _remove(self, name: str) -> None:
        try:
            self.store.remove(name)
        except KeyError:
            raise ClientError(404, f"nobody called {name!r} is enrolled") from None
        except ValueError as error:  # a trained person
            raise ClientError(409, str(error)) from None

    async def remove(self, name: str) -> None:
        await self._on_kernel(self._remove, name)

    def names(self) -> list[str]:
        return list(self.store.names())
