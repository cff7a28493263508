"""The main job: `python train.py [flags]` is `isp train [flags]` (see --help)."""
import sys

from benchmarks.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
