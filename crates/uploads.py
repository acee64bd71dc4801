"""Upload handlers that hash a crate as it arrives, so intake never reads the upload again to hash it.

Django writes each uploaded chunk to memory or to a temporary file; these handlers feed the same chunk
to SHA-256 on the way and set ``upload.sha256`` when the file is complete. ``crates.services`` then
stores a temporary upload by moving it into place (``FileSystemStorage`` renames a file that has a
``temporary_file_path``), so between the network and validation the crate's bytes are read once.
"""

import hashlib

from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler


class _Hashing:
    def new_file(self, *args, **kwargs):
        self.sha256 = hashlib.sha256()  # before super(): the memory handler stops the chain there
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        rest = super().receive_data_chunk(raw_data, start)
        if rest is None:  # this handler kept the chunk
            self.sha256.update(raw_data)
        return rest

    def file_complete(self, file_size):
        upload = super().file_complete(file_size)
        if upload is not None:
            upload.sha256 = self.sha256.hexdigest()
        return upload


class HashingMemoryFileUploadHandler(_Hashing, MemoryFileUploadHandler):
    """Small uploads, kept in memory, hashed as they arrive."""


class HashingTemporaryFileUploadHandler(_Hashing, TemporaryFileUploadHandler):
    """Large uploads, streamed to a temporary file, hashed as they arrive."""
