"""A traceback with the team's own frames apart from the libraries' (folded on the page).

Frames are classified by their file path as Python prints it, which may be another machine's:
site-/dist-packages name their package; the standard library lives under lib/pythonX.Y;
Jobdash's own frames (the instrumentation around every job) count as a library too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FRAME = re.compile(r'^\s*File "(?P<path>[^"]+)", line \d+')
_PACKAGES = re.compile(r"[/\\](?:site|dist)-packages[/\\](?P<package>[^/\\]+)")
_STDLIB = re.compile(r"[/\\]lib[/\\]python\d+(?:\.\d+)?[/\\]")
_JOBDASH = re.compile(r"[/\\]jobdash[/\\](?:app|jobs|core|migrations)[/\\]")


@dataclass(frozen=True)
class Segment:
    """Consecutive lines of a traceback: the team's own (`library` None) or one library run."""

    text: str
    libraries: tuple[str, ...] = ()
    frames: int = 0

    @property
    def folded(self) -> bool:
        return bool(self.libraries)


def frame_library(path: str) -> str | None:
    """The library a frame's file belongs to, or None for the team's own code."""
    if path.startswith("<frozen "):
        return "stdlib"
    if match := _PACKAGES.search(path):
        package = match.group("package").split(".")[0]
        return "jobdash" if package.startswith("jobdash") else package
    if _JOBDASH.search(path):
        return "jobdash"
    if _STDLIB.search(path):
        return "stdlib"
    return None


def _frames(lines: list[str]) -> list[tuple[str | None, list[str]]]:
    """(library, lines) per frame: a frame is its "File ..." line and the lines under it."""
    blocks: list[tuple[str | None, list[str]]] = []
    for line in lines:
        match = _FRAME.match(line)
        if match:
            blocks.append((frame_library(match.group("path")), [line]))
        elif blocks and line.startswith("    "):
            blocks[-1][1].append(line)
        else:
            blocks.append((None, [line]))  # "Traceback ...", the exception line, chaining text
    return blocks


def split_traceback(text: str) -> list[Segment]:
    """The traceback as segments in order; runs of library frames become one folded segment."""
    segments: list[Segment] = []
    run: list[tuple[str, list[str]]] = []

    def close_run() -> None:
        if run:
            names = tuple(dict.fromkeys(name for name, _ in run))
            lines = [line for _, block in run for line in block]
            segments.append(Segment("\n".join(lines), names, len(run)))
            run.clear()

    for library, block in _frames(text.splitlines()):
        if library is not None:
            run.append((library, block))
            continue
        close_run()
        if segments and not segments[-1].folded:
            segments[-1] = Segment(segments[-1].text + "\n" + "\n".join(block))
        else:
            segments.append(Segment("\n".join(block)))
    close_run()
    return segments
