"""`python -m modelshelf`: the same command line as the `modelshelf` script."""

from modelshelf.cli import main

raise SystemExit(main())
