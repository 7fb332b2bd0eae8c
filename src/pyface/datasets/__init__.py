"""Ready-made face data sets: ORL / AT&T, Labeled Faces in the Wild, and synthetic faces that need no download."""

from ..data.synthetic import synthetic_faces
from .att import fetch_att_faces
from .download import get_data_home
from .lfw import fetch_lfw, lfw_people

__all__ = ["fetch_att_faces", "fetch_lfw", "lfw_people", "synthetic_faces", "get_data_home"]
