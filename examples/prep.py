"""Cleans the raw points: drops malformed rows, scales x and y to [0, 1], and writes a
dataset with a train split and an eval split (every fifth row goes to eval).

usage: python3 prep.py RAW_CSV OUT_DIR
"""
import csv
import os
import sys

raw, out = sys.argv[1], sys.argv[2]
rows = []
with open(raw) as f:
    for r in csv.DictReader(f):
        try:
            rows.append((int(r["id"]), float(r["x"]), float(r["y"]), int(r["label"])))
        except (KeyError, ValueError):
            continue
scale = 10.0
cleaned = [(i, x / scale, y / scale, label) for i, x, y, label in rows]
for split in ("train", "eval"):
    os.makedirs(os.path.join(out, split), exist_ok=True)
    with open(os.path.join(out, split, "points.csv"), "w") as f:
        f.write("id,x,y,label\n")
        for i, x, y, label in cleaned:
            if (i % 5 == 0) == (split == "eval"):
                f.write(f"{i},{x:.4f},{y:.4f},{label}\n")
print(f"prep: {len(cleaned)} rows, scale {scale}")
