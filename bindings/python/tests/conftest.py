import os
import sys

# the source tree's package (an installed one is tested by .ci/run from outside the tree)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
