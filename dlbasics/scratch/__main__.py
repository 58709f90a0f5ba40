"""Entry point printing the from-scratch check table.

python -m dlbasics.scratch   # exits 1 if any check fails
"""

from dlbasics.scratch.check import main

raise SystemExit(main())
