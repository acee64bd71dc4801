"""Reading an approved workflow's crate: its files as a tree, one file highlighted, and the changes
from the previously approved version of the same workflow.

The crate ZIP is read in place; nothing is extracted to disk, and a file is only ever found by its
exact name in the archive's listing. Text is shown up to :data:`MAX_VIEW_BYTES`; anything larger or
binary is offered as a download of the whole crate instead. Highlighting is Pygments' (pinned in
requirements.txt) with CSS classes only: the style sheet is ``static/css/pygments.css``, since the
content security policy allows no inline styles.
"""

import difflib
import hashlib
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import DiffLexer, TextLexer, get_lexer_by_name, get_lexer_for_filename
from pygments.util import ClassNotFound

from portal.models import ApprovedWorkflow, Decision

MAX_VIEW_BYTES = 512 * 1024
MAX_FILES = 2000
MAX_HASH_BYTES = 256 * 1024 * 1024
# Workflow languages Pygments does not know by their file name.
_LEXER_BY_SUFFIX = {".cwl": "yaml", ".nf": "groovy", ".smk": "python", ".ga": "json"}


class CrateUnreadable(Exception):
    """The workflow has no crate, or it cannot be read as a ZIP."""


@dataclass
class Entry:
    path: str
    size: int
    sha256: str = ""

    @property
    def name(self):
        return PurePosixPath(self.path).name


@dataclass
class Folder:
    name: str
    path: str
    folders: list = field(default_factory=list)
    files: list = field(default_factory=list)


@contextmanager
def _open(workflow):
    """The crate as an open ZipFile; the stored file is closed afterwards."""
    if not workflow.crate:
        raise CrateUnreadable("This workflow was registered without its crate.")
    try:
        handle = workflow.crate.open("rb")
    except OSError as exc:
        raise CrateUnreadable("The workflow's crate cannot be read.") from exc
    with handle:
        try:
            archive = zipfile.ZipFile(handle)
        except zipfile.BadZipFile as exc:
            raise CrateUnreadable("The workflow's crate cannot be read as a ZIP.") from exc
        with archive:
            yield archive


def _members(archive):
    members = [i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith(("/", "../"))]
    return [i for i in members if ".." not in PurePosixPath(i.filename).parts][:MAX_FILES]


def files(workflow, *, with_checksums=False):
    """The crate's files, sorted by path. With checksums: each file's SHA-256, or, when the crate unpacks
    to more than MAX_HASH_BYTES (no workflow should), the CRC-32 and size its ZIP entry records."""
    with _open(workflow) as archive:
        entries = []
        members = _members(archive)
        hash_contents = sum(i.file_size for i in members) <= MAX_HASH_BYTES
        for info in members:
            digest = ""
            if with_checksums and not hash_contents:
                digest = f"crc32:{info.CRC:08x}:{info.file_size}"
            elif with_checksums:
                hasher = hashlib.sha256()
                with archive.open(info) as member:
                    for chunk in iter(lambda m=member: m.read(1024 * 1024), b""):
                        hasher.update(chunk)
                digest = hasher.hexdigest()
            entries.append(Entry(info.filename, info.file_size, digest))
    return sorted(entries, key=lambda e: e.path)


def tree(entries):
    """The files as nested folders (a Folder whose name is '' is the crate's root)."""
    root = Folder("", "")
    for entry in entries:
        parts = PurePosixPath(entry.path).parts
        folder = root
        for depth, name in enumerate(parts[:-1], start=1):
            found = next((f for f in folder.folders if f.name == name), None)
            if found is None:
                found = Folder(name, "/".join(parts[:depth]))
                folder.folders.append(found)
            folder = found
        folder.files.append(entry)
    return root


def read_text(workflow, path):
    """(text, None) of one file, or (None, why it is not shown); KeyError if there is no such file."""
    with _open(workflow) as archive:
        info = next((i for i in _members(archive) if i.filename == path), None)
        if info is None:
            raise KeyError(path)
        if info.file_size > MAX_VIEW_BYTES:
            return (
                None,
                f"{PurePosixPath(path).name} is too large to show here; download the crate to read it.",
            )
        data = archive.read(info)
    if b"\x00" in data[:8192]:
        return None, f"{PurePosixPath(path).name} is not a text file; download the crate to read it."
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return data.decode("latin-1"), None


def _lexer(path, text):
    suffix = PurePosixPath(path).suffix.lower()
    try:
        if suffix in _LEXER_BY_SUFFIX:
            return get_lexer_by_name(_LEXER_BY_SUFFIX[suffix])
        return get_lexer_for_filename(path, text)
    except ClassNotFound:
        return TextLexer()


def highlight(path, text):
    """The file as highlighted HTML with line numbers (CSS classes only)."""
    formatter = HtmlFormatter(linenos="inline", cssclass="highlight", wrapcode=True)
    return pygments_highlight(text, _lexer(path, text), formatter)


def previous_approved(workflow):
    """The approved version of the same workflow registered before this one (None if there is none)."""
    return (
        ApprovedWorkflow.objects.filter(
            workflow_id=workflow.workflow_id,
            approvals__status=Decision.APPROVED,
            created_at__lt=workflow.created_at,
        )
        .exclude(pk=workflow.pk)
        .distinct()
        .order_by("-created_at", "-pk")
        .first()
    )


@dataclass
class FileChange:
    path: str
    change: str  # "added", "removed", "changed"
    diff_html: str = ""
    note: str = ""


def compare(old, new):
    """What changed from one workflow's crate to another's, file by file (compared by SHA-256)."""
    before = {e.path: e for e in files(old, with_checksums=True)}
    after = {e.path: e for e in files(new, with_checksums=True)}
    changes = []
    for path in sorted(before.keys() | after.keys()):
        if path not in before:
            changes.append(FileChange(path, "added"))
        elif path not in after:
            changes.append(FileChange(path, "removed"))
        elif before[path].sha256 != after[path].sha256:
            old_text, why_old = read_text(old, path)
            new_text, why_new = read_text(new, path)
            if old_text is None or new_text is None:
                changes.append(FileChange(path, "changed", note=why_new or why_old))
                continue
            lines = difflib.unified_diff(
                old_text.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                fromfile=f"{old.version}/{path}",
                tofile=f"{new.version}/{path}",
            )
            text = "".join(lines)
            formatter = HtmlFormatter(cssclass="highlight", wrapcode=True)
            changes.append(FileChange(path, "changed", pygments_highlight(text, DiffLexer(), formatter)))
    return changes
