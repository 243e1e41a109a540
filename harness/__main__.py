import sys

OURS = ("harness", "conan_model", "train", "reporting", "leaderboards")

try:
    from harness.cli import main

    code = main()
except ModuleNotFoundError as exc:  # `python3 -m harness` outside the project's venv (before stop 70, a newcomer's
    # walk: a raw traceback ending in "No module named 'tabulate'")
    if not exc.name or exc.name.split(".")[0] in OURS:
        raise
    print(f"harness: error: the package {exc.name!r} is not installed for {sys.executable}: activate the project's "
          "venv (`. .venv/bin/activate`) or install the project into this Python (`pip install -c constraints.txt "
          "-e .`; README, Set up and run)", file=sys.stderr)
    code = 2
sys.exit(code)
