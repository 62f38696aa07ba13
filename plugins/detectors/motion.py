"""People as what moves in front of a fixed camera: OpenCV's MOG2 background model.

Most deployed cameras do not move, and on their footage the regions that differ from a
learned background are people (and vehicles, which the shape test below mostly rejects).
No weights, any resolution, and it finds people too small for HOG.  Its limits: a moving
camera sees motion everywhere, someone standing still fades into the background after
about ``HISTORY`` sampled frames, and people walking side by side become one region.
The model is per video (:meth:`MotionDetector.new_video`), and the first frame of each only
teaches it the background.
"""

from __future__ import annotations

import numpy as np

from mia.plugins.detectors._opencv import number_option, opencv

HISTORY = 30  # sampled frames the background model remembers
FOREGROUND = 200  # MOG2 marks shadows 127 and foreground 255: shadows are not people
MIN_HEIGHT = 0.08  # of the frame's height: smaller regions are noise or far away
ASPECT = (1.0, 5.0)  # height / width of a standing or walking person


class MotionDetector:
    def __init__(self, min_height: float = MIN_HEIGHT):
        self.cv2, self.min_height = opencv(), min_height
        self.kernel = self.cv2.getStructuringElement(self.cv2.MORPH_ELLIPSE, (5, 5))
        self.settings = {"name": "motion", "history": HISTORY, "min_height": min_height, "aspect": list(ASPECT)}
        self.new_video()

    def new_video(self) -> None:
        self.model = self.cv2.createBackgroundSubtractorMOG2(history=HISTORY, varThreshold=25, detectShadows=True)
        self.seen = 0

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """``[N, 5]`` float32: x1, y1, x2, y2, and the share of the box that moved."""
        cv2 = self.cv2
        mask = self.model.apply(frame)
        self.seen += 1
        if self.seen == 1:
            return np.zeros((0, 5), np.float32)
        mask = np.where(mask >= FOREGROUND, 255, 0).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self.kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.kernel, iterations=3)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        found = []
        for x, y, w, h, area in stats[1:count]:
            if h >= self.min_height * frame.shape[0] and ASPECT[0] <= h / max(w, 1) <= ASPECT[1]:
                found.append((x, y, x + w, y + h, area / float(w * h)))
        return np.asarray(found, np.float32).reshape(-1, 5)


def motion_detector(option: str | None, device: str = "cpu") -> MotionDetector:
    """``motion`` or ``motion:MIN_HEIGHT`` (the smallest person, as a share of the frame's height)."""
    if option is None:
        return MotionDetector()
    return MotionDetector(number_option("motion", option, 0.01, 0.9,
                                        "the smallest person's height as a share of the frame's", "motion:0.05"))
