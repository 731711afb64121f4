"""`python -m open_autoglm ...` is `autoglm ...` (so `accelerate launch -m open_autoglm train` works)."""

from open_autoglm.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
