"""CSV imports that stream: see engine.py for how, kinds.py for which files."""

from .engine import ImportKind, ImportResult, RowError, RowInvalid, import_csv
from .kinds import KINDS, register_kind
from .reader import ENCODINGS, Column, FileProblem

__all__ = ["ENCODINGS", "KINDS", "Column", "FileProblem", "ImportKind", "ImportResult",
           "RowError", "RowInvalid", "import_csv", "register_kind"]
