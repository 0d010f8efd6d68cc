"""The `normcompress` entry point, kept light: Ctrl-C works from the first instant, imports included."""

import signal
import sys


def main() -> None:
    # A process started in the background by a non-interactive shell inherits SIGINT as ignored, and
    # Python then installs no handler: every command that promises "Ctrl-C keeps the run" installs its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        from normcompress.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("normcompress: interrupted\n")
        sys.exit(130)
    cli_main()


if __name__ == "__main__":
    main()
