"""Textual's Linux driver, for a terminal that can vanish under the app: an SSH session dropping, tmux
killed, the terminal window closed.

Textual's writer thread dies on the first write that fails (EIO once the terminal has hung up); its
queue then fills, the app's next repaint blocks on it for good, and the stop of a run (and the exit
after it) is never handled: the process stayed at full CPU on a dead terminal. Here the first failed
write marks the terminal gone, later output is dropped, and the process gets the SIGHUP the hangup
means, which takes the app's one way out (stop the run within a batch, keep it interrupted, exit).
"""

import os
import signal
from typing import IO

from textual.drivers.linux_driver import LinuxDriver


class _Output:
    """The driver's output file, as Textual's writer thread uses it (write, flush, fileno)."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self.gone = False

    def _do(self, operation, *args) -> None:
        if self.gone:
            return
        try:
            operation(*args)
        except OSError:  # EIO: the terminal hung up; EPIPE: a pipe's reader went away
            self.gone = True
            os.kill(os.getpid(), signal.SIGHUP)

    def write(self, text: str) -> None:
        self._do(self._file.write, text)

    def flush(self) -> None:
        self._do(self._file.flush)

    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return self._file.isatty()


class VanishingTerminalDriver(LinuxDriver):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._file = _Output(self._file)
