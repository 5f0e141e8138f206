"""``python -m sk_adam``: the same as the ``sk-adam`` command."""

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
