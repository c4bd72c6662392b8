import sys

from scripts.cli.app import main

sys.exit(main())
