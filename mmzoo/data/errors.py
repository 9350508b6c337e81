"""Errors and the skip-or-raise policy for unreadable data files."""

import logging
import warnings

logger = logging.getLogger("mmzoo.data")


class UnreadableFileError(ValueError):
    """A data file could not be read or decoded.

    Attributes:
        path: the file.
        reason: what went wrong, in a few words.
    """

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = str(reason)
        super().__init__(f"Cannot read {self.path}: {self.reason}")


class SkippedFiles:
    """Collects the files a loader skipped, and reports them once, naming each.

    With ``strict=True`` the first unreadable file raises instead of being skipped.

    Example:
    >>> skipped = SkippedFiles(strict=False)
    >>> skipped.add(UnreadableFileError("a.wav", "not a RIFF file"))
    >>> skipped.paths
    ['a.wav']
    """

    def __init__(self, strict=False):
        self.strict = strict
        self.errors = []

    def add(self, error):
        if self.strict:
            raise error
        self.errors.append(error)

    @property
    def paths(self):
        return [error.path for error in self.errors]

    def warn(self, what="files"):
        """One warning counting and naming the skipped files (if any)."""
        if not self.errors:
            return
        listing = "; ".join(f"{e.path} ({e.reason})" for e in self.errors)
        message = f"Skipped {len(self.errors)} unreadable {what}: {listing}. Pass strict=True to raise instead."
        logger.warning(message)
        warnings.warn(message, stacklevel=3)
