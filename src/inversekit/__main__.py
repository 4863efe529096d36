import sys

from inversekit.cli import main

sys.exit(main())
