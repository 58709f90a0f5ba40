"""``python -m dlbasics fit --config configs/linear_regression.yaml`` — the same CLI as ``dlbasics``."""

from dlbasics.launch import main

if __name__ == "__main__":
    raise SystemExit(main())
