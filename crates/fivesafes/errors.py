"""The one exception the Five Safes crate library raises for crates it will not handle."""

from __future__ import annotations

__all__ = ["CrateRefused"]


class CrateRefused(Exception):
    """A crate (or its packaging) is refused before or instead of validation.

    Invariants: ``code`` is a stable, dotted identifier (``zip.path_traversal``, ``bag.checksum_mismatch``,
    ``metadata.duplicate_key``...) that callers may branch on and show to operators; ``message`` is a
    plain-language sentence for the person who sent the crate; ``where`` names the archive entry, file
    or JSON location at fault, or is ``None`` when the whole input is at fault.
    """

    def __init__(self, code: str, message: str, where: str | None = None) -> None:
        super().__init__(f"{code}: {message}" + (f" ({where})" if where else ""))
        self.code = code
        self.message = message
        self.where = where

    def to_dict(self) -> dict[str, str | None]:
        """The refusal as JSON-ready data."""
        return {"code": self.code, "message": self.message, "where": self.where}
