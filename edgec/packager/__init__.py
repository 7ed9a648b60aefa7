"""Writes bundles and reads them back."""

from edgec.packager.bundle import Bundle, read_manifest, write_bundle

__all__ = ["Bundle", "read_manifest", "write_bundle"]
