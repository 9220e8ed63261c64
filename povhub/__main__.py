import sys

from povhub.cli import main

sys.exit(main())
