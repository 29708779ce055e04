"""The clip manifest: one row per clip, whatever dataset it came from.

A clip is an id, an audio path, an optional span inside that file (seconds), an optional video
path and narration, one or more label columns (``label``; or ``verb``/``noun``/``action``), an
optional fold / group (e.g. Kitchen20's Freesound ``source_id``) and an optional *sounding* flag
(SoundingActions, Chen et al. 2024, §5: whether the narrated action is both visible and audible
in the clip; None when unknown).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harken.errors import DataError


@dataclass(frozen=True)
class Clip:
    """One audio (or audio-visual) clip.

    Attributes:
        clip_id: Unique id within its dataset.
        audio_path: File holding the audio (a long recording when ``start``/``end`` are set).
        labels: Target column → class name, e.g. ``{"label": "blender"}`` or
            ``{"verb": "take", "noun": "plate", "action": "take plate"}``.
        start: Span start in seconds, or None for the whole file.
        end: Span end in seconds, or None for the whole file.
        video_path: Optional video file.
        narration: Optional free-text narration (EPIC-KITCHENS).
        fold: Optional published fold.
        group: Optional recording-source group (clips of one group share a source).
        sounding: Whether the narrated action is both visible and audible in the clip (the
            ground truth of sounding action discovery, Chen et al. 2024 §5 and §6.1); None when
            unknown.
        source: Where the audio came from when ``audio_path`` is a copy harken made (a
            WebDataset member: ``/data/shards-000.tar#000123.flac``); None for ordinary files.
            Rows, indexes and error messages name it instead of the copy.
    """

    clip_id: str
    audio_path: Path
    labels: dict[str, str] = field(default_factory=dict)
    start: float | None = None
    end: float | None = None
    video_path: Path | None = None
    narration: str | None = None
    fold: str | None = None
    group: str | None = None
    sounding: bool | None = None
    source: str | None = None

    def label(self, target: str) -> str:
        try:
            return self.labels[target]
        except KeyError:
            raise DataError(
                f"clip {self.clip_id!r} has no label column {target!r}; "
                f"it has: {', '.join(self.labels) or 'none'}"
            ) from None


@dataclass
class Manifest:
    """An ordered collection of clips from one dataset.

    Args:
        name: Dataset name (part of every feature-store key).
        clips: The clips, in a stable order.
        root: Folder the dataset was read from (for provenance).
    """

    name: str
    clips: list[Clip]
    root: Path | None = None

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for clip in self.clips:
            if clip.clip_id in seen:
                raise DataError(f"dataset {self.name!r}: clip id {clip.clip_id!r} appears twice")
            seen.add(clip.clip_id)

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self) -> Iterator[Clip]:
        return iter(self.clips)

    @property
    def targets(self) -> list[str]:
        """Label columns present on every clip."""
        if not self.clips:
            return []
        common = set(self.clips[0].labels)
        for clip in self.clips[1:]:
            common &= set(clip.labels)
        return [t for t in self.clips[0].labels if t in common]

    def classes(self, target: str) -> list[str]:
        """Sorted distinct class names of ``target``."""
        return sorted({clip.label(target) for clip in self.clips})

    def labels(self, target: str) -> list[str]:
        return [clip.label(target) for clip in self.clips]

    def sounding(self) -> list[bool | None]:
        """The clips' sounding flags, in order (None where unknown)."""
        return [clip.sounding for clip in self.clips]

    def subset(self, keep: Iterable[bool] | Sequence[int]) -> Manifest:
        keep = list(keep)
        if keep and isinstance(keep[0], bool):
            clips = [c for c, k in zip(self.clips, keep, strict=True) if k]
        else:
            clips = [self.clips[i] for i in keep]
        return Manifest(self.name, clips, self.root)

    def with_classes(self, target: str, classes: Iterable[str]) -> Manifest:
        wanted = set(classes)
        return self.subset([c.label(target) in wanted for c in self.clips])

    def fingerprint(self) -> str:
        """A hash of the clip list (ids, paths, spans, labels, sounding flags) for manifests and
        cache keys. A clip whose ``sounding`` is None hashes as before the flag existed, so old
        fingerprints are unchanged."""
        h = hashlib.sha256()
        for c in self.clips:
            flag = "" if c.sounding is None else f"|sounding={c.sounding}"
            h.update(
                f"{c.clip_id}|{c.audio_path}|{c.start}|{c.end}|{sorted(c.labels.items())}"
                f"{flag}\n".encode()
            )
        return h.hexdigest()[:16]

    def to_csv(self, path: Path) -> None:
        """Write the manifest as CSV (``clip_id,audio_path,start,end,...,<label columns>``).

        A ``sounding`` column (``true``/``false``/empty) is written only when some clip has a
        sounding flag."""
        targets = sorted({t for c in self.clips for t in c.labels})
        with_sounding = any(c.sounding is not None for c in self.clips)
        fields = [
            "clip_id",
            "audio_path",
            "start",
            "end",
            "video_path",
            "narration",
            "fold",
            "group",
            *(["sounding"] if with_sounding else []),
            *targets,
        ]
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for c in self.clips:
                writer.writerow(
                    {
                        "clip_id": c.clip_id,
                        "audio_path": str(c.audio_path),
                        "start": "" if c.start is None else c.start,
                        "end": "" if c.end is None else c.end,
                        "video_path": c.video_path or "",
                        "narration": c.narration or "",
                        "fold": c.fold or "",
                        "group": c.group or "",
                        **(
                            {"sounding": "" if c.sounding is None else str(c.sounding).lower()}
                            if with_sounding
                            else {}
                        ),
                        **{t: c.labels.get(t, "") for t in targets},
                    }
                )
