"""The `normcompress` entry point, kept light: Ctrl-C works from the first instant, imports included."""

import signal
import sys


def main() -> None:
    # A process started in the background by a non-interactive shell inherits SIGINT as ignored, and
    # Python then installs no handler: every command that promises "Ctrl-C keeps the run" installs its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        from normcompress.cli import main as cli_main
        from normcompress.text import escape_what_the_terminal_cannot_show

        escape_what_the_terminal_cannot_show()
        cli_main()
        code = 0
    except KeyboardInterrupt:  # during the imports, or after the command while it exits
        sys.stderr.write("normcompress: interrupted\n")
        code = 130
    except SystemExit as exc:
        code = exc.code
    # The work is done: a Ctrl-C now would turn the exit into a traceback, or kill the process by signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


if __name__ == "__main__":
    main()
