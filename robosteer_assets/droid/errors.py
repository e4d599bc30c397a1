"""Typed errors for bad DROID input.

Every error names the file, the field inside it, what was expected and what was
found, so a quarantine table or a CLI line is enough to fix the episode::

    MissingFieldError: /demos/t/ep1/trajectory.h5 [action/joint_velocity]: expected a dataset, found nothing

``EpisodeError`` and its subclasses describe one episode (the episode is
quarantined; the others go on). ``TooFewEpisodesError`` and ``StoreError`` are
task / store level.
"""

from __future__ import annotations

import os
from pathlib import Path


class EpisodeError(Exception):
    """A DROID episode that cannot be used.

    ``path``: the offending file or directory; ``field``: the dataset / key /
    attribute inside it ("" when the whole file is at fault); ``expected`` and
    ``found``: short human-readable descriptions.
    """

    kind = "invalid episode"

    def __init__(self, path: str | os.PathLike, field: str, expected: str, found: str):
        self.path = Path(path)
        self.field = field
        self.expected = expected
        self.found = found
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = f"{self.path} [{self.field}]" if self.field else f"{self.path}"
        return f"{where}: expected {self.expected}, found {self.found}"

    @property
    def reason(self) -> str:
        """One line for a quarantine table: ``<ClassName>: <message>``."""
        return f"{type(self).__name__}: {self.message}"

    def __reduce__(self):  # picklable across processes (Dagster, multiprocessing)
        return (type(self), (self.path, self.field, self.expected, self.found))


class MissingFileError(EpisodeError):
    """A required file (trajectory.h5, metadata JSON, camera MP4) does not exist."""


class CorruptFileError(EpisodeError):
    """A file exists but cannot be opened / parsed (truncated h5, invalid JSON)."""


class MissingFieldError(EpisodeError):
    """A required h5 group / dataset or JSON key is absent."""


class ShapeError(EpisodeError):
    """A dataset / array has the wrong shape."""


class DTypeError(EpisodeError):
    """A dataset / array has the wrong dtype (e.g. strings where floats are expected)."""


class LengthMismatchError(EpisodeError):
    """Datasets of one episode have different leading (time) lengths."""


class NonFiniteError(EpisodeError):
    """A numeric dataset contains NaN or +-inf."""


class VideoError(EpisodeError):
    """A camera MP4 cannot be decoded or has no frames."""


class FrameCountError(EpisodeError):
    """An MP4 has more frames than the h5 has steps, or more than one fewer."""


class MissingInstructionError(EpisodeError):
    """No language instruction: not in the annotations, h5 attrs or metadata."""


class MetadataError(EpisodeError):
    """``metadata_<uuid>.json`` is missing keys or has values of the wrong type."""


class CameraError(EpisodeError):
    """The cameras named in the metadata / ``observation/camera_type`` are not usable."""


class UnsafeTaskNameError(EpisodeError):
    """A task folder name that is not a safe partition key."""


class InvalidRecordingError(EpisodeError):
    """An in-memory ``EpisodeRecording`` handed to the writer is malformed."""


class TooFewEpisodesError(Exception):
    """A task has fewer valid episodes than the configured minimum.

    ``quarantined`` maps episode path -> reason for every invalid episode.
    """

    def __init__(self, task_dir: str | os.PathLike, valid: int, required: int, quarantined: dict[str, str] | None = None):
        self.task_dir = Path(task_dir)
        self.valid = valid
        self.required = required
        self.quarantined = dict(quarantined or {})
        lines = [
            f"{self.task_dir}: expected at least {required} valid episodes (min_episodes), found {valid}"
            + (f" ({len(self.quarantined)} quarantined)" if self.quarantined else "")
        ]
        lines += [f"  {p}: {r}" for p, r in sorted(self.quarantined.items())]
        super().__init__("\n".join(lines))

    def __reduce__(self):
        return (type(self), (self.task_dir, self.valid, self.required, self.quarantined))


class StoreError(Exception):
    """A per-task episode store that is missing, half-written or corrupt."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        return (type(self), (self.path, self.problem))


class RateError(EpisodeError):
    """The recorded control rate cannot be brought to the configured target rate."""


class UnknownTaskError(EpisodeError):
    """An episode refers to a task index that the dataset's task table does not list."""


class DatasetError(Exception):
    """A whole dataset that cannot be read (e.g. a LeRobot ``meta/info.json`` with an
    unsupported ``codebase_version``); no episode of it is ingested. Same fields and
    message as ``EpisodeError``."""

    def __init__(self, path: str | os.PathLike, field: str, expected: str, found: str):
        self.path = Path(path)
        self.field = field
        self.expected = expected
        self.found = found
        where = f"{self.path} [{field}]" if field else f"{self.path}"
        super().__init__(f"{where}: expected {expected}, found {found}")

    @property
    def reason(self) -> str:
        return f"{type(self).__name__}: {self}"

    def __reduce__(self):
        return (type(self), (self.path, self.field, self.expected, self.found))
