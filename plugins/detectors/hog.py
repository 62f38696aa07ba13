"""OpenCV's HOG people detector (Dalal & Triggs): no weights to fetch, runs anywhere.

Its window is a fixed number of pixels (cv2.HOGDescriptor's winSize), so a person smaller
than the window in the frame it sees is missed; ``upscale`` enlarges frames first
(surveillance footage often shows people that small), at the square of its cost.
"""

from __future__ import annotations

import numpy as np

from mia.plugins.detectors._opencv import number_option, opencv

#: detections below this SVM margin are mostly texture (railings, windows) on street footage
MIN_SCORE = 0.3


class HogDetector:
    def __init__(self, upscale: float = 1.0):
        cv2 = opencv()
        self.cv2, self.upscale = cv2, upscale
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.settings = {"name": "hog", "upscale": upscale, "min_score": MIN_SCORE}

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """``[N, 5]`` float32: x1, y1, x2, y2 in ``frame``'s pixels, and the SVM margin."""
        image = frame if self.upscale == 1.0 else self.cv2.resize(frame, None, fx=self.upscale, fy=self.upscale)
        boxes, weights = self.hog.detectMultiScale(np.ascontiguousarray(image[:, :, ::-1]), winStride=(8, 8),
                                                   padding=(8, 8), scale=1.05)
        if len(boxes) == 0:
            return np.zeros((0, 5), np.float32)
        boxes = np.asarray(boxes, np.float32) / self.upscale
        found = np.column_stack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:], np.ravel(weights)]).astype(np.float32)
        return found[found[:, 4] >= MIN_SCORE]


def hog_detector(option: str | None, device: str = "cpu") -> HogDetector:
    """``hog`` or ``hog:UPSCALE`` (e.g. ``hog:1.5`` for people under 100 pixels high)."""
    if option is None:
        return HogDetector()
    return HogDetector(number_option("hog", option, 0.5, 4.0, "an upscale factor", "hog:1.5"))
