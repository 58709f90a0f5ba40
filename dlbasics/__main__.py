"""``python -m dlbasics fit --config configs/linear_regression.yaml`` — the same CLI as ``dlbasics``."""

import sys

from dlbasics.launch import main

if __name__ == "__main__":
    sys.exit(main())
