import sys

from inversekit.front.cli import main

sys.exit(main())
