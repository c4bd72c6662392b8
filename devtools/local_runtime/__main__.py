import sys

from devtools.local_runtime.cli import main

sys.exit(main())
