"""The one image resize of the project: camera frame -> model-resolution image.

Both the episode store (ingest, ``droid.reader``) and serving (``vla.policy`` /
``vla.transforms``) call :func:`resize_with_pad`, so a demonstration frame and a live
request frame of the same camera reach the model as the same pixels. It is openpi's
``ResizeImages`` (openpi_facts.md §3.1): keep the aspect ratio, PIL bilinear, centre on a
black canvas. A real DROID frame (1280x720) keeps its full field of view with black bars
above and below instead of losing its sides to a crop. A square frame of the model size
(the simulator renders those) is returned unchanged.

No JAX here: ingest imports this without the model stack.
"""

from __future__ import annotations

import numpy as np

# Recorded in each episode store's attrs (``droid.store``): stores written with another
# method are stale and are re-ingested.
RESIZE_METHOD = "resize_with_pad"


def resize_with_pad(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 ``[H, W, C]`` -> ``[height, width, C]``: ratio = max(W / width, H / height), new
    size ``int(dim / ratio)``, PIL bilinear, pasted at ``int((height - h') / 2), int((width - w') / 2)``
    on zeros. Returns ``image`` itself when it already has that size."""
    from PIL import Image

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"resize_with_pad: expected a uint8 [H, W, C] image, found {image.dtype} {image.shape}")
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    ratio = max(w / width, h / height)
    nh, nw = int(h / ratio), int(w / ratio)
    resized = np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((nw, nh), resample=Image.BILINEAR))
    out = np.zeros((height, width, image.shape[2]), np.uint8)
    top, left = int((height - nh) / 2), int((width - nw) / 2)
    out[top: top + nh, left: left + nw] = resized.reshape(nh, nw, image.shape[2])
    return out
