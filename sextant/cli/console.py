"""The rich Console the commands print with, made on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


class LazyConsole:
    """A rich Console made on first use: commands that only print() never import rich's
    console machinery (a twentieth of a second of start-up)."""

    def __init__(self, stderr: bool):
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    def get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
            if not self._console.is_terminal:
                self._console.width = 160  # pipes and CI logs: don't wrap tables at 80 columns
        return self._console


def real(console: Console) -> Console:
    """The Console itself (rich's Live and Progress want the real object, not a stand-in)."""
    return console.get() if isinstance(console, LazyConsole) else console
