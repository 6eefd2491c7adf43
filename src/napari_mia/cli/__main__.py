"""``python -m napari_mia.cli`` (and ``torchrun -m napari_mia.cli``): the ``napari-mia`` command."""

import sys

from . import main

sys.exit(main())
