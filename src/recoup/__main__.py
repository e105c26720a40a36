"""Run the Recoup command line: ``python -m recoup``."""

from recoup.cli import main

main()
