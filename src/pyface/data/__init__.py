"""Face images in: folders of people, arrays, preprocessing, synthetic faces."""

from .dataset import FaceDataset, from_arrays, load_images, select_people
from .preprocess import Preprocessor

__all__ = ["FaceDataset", "from_arrays", "load_images", "select_people", "Preprocessor"]
