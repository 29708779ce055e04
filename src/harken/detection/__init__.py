"""Long recordings as timelines: which label sounds when.

The pipeline, one small module per step:

1. :mod:`~harken.detection.windows` — overlapping windows cut from a decoded stream;
2. :mod:`~harken.detection.scoring` — each window embedded by the backend's audio encoder and
   scored against every label (per-label scores, no softmax);
3. :mod:`~harken.detection.segments` — median smoothing over time, thresholds, segments;
4. :mod:`~harken.detection.thresholds` — default thresholds, or per-label ones chosen on the
   user's annotated recordings;
5. :mod:`~harken.detection.detector` — the steps above with fixed settings;
6. :mod:`~harken.detection.soundscapes` — benchmark recordings built from real clips with
   known onsets and offsets (``harken bench detect``).
"""
