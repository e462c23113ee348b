"""``smtpcli demo``: a local capture server and the main commands run against it.

Not one of the UI-free library packages: the demo runs the real click commands in-process and
lets them render, exactly as a user who typed the shown command lines would see them.
The bundled zone file (``demo.example.zone``) is package data.
"""

from __future__ import annotations

from pathlib import Path

ZONE_FILE_NAME = "demo.example.zone"


def zone_file_path() -> Path:
    """The bundled demo zone (installed next to this module as package data)."""
    return Path(__file__).with_name(ZONE_FILE_NAME)
