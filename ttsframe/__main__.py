import sys

from ttsframe.cli import main

sys.exit(main())
