"""python -m dlbasics.scratch   # prints the from-scratch check table; exits 1 if any check fails"""

from dlbasics.scratch.check import main

raise SystemExit(main())
