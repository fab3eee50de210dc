import sys

from facetrack.commands.cli import main

sys.exit(main())
