"""Make the helper modules of this folder (e.g. ``reference``) importable under importlib mode."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
