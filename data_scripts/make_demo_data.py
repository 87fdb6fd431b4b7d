"""Write the offline demo dataset (MVTec-AD layout): python data_scripts/make_demo_data.py OUT [--seed 0].

Same as ``omniad-lite make-demo-data OUT``; the generator is omniad_lite/data/demo.py.
"""
import argparse

from omniad_lite.data import make_demo_dataset

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", help="output folder")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    make_demo_dataset(args.out, seed=args.seed)
