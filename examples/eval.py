"""Evaluates a nearest-centroid model on the eval split; logs eval accuracy to mlv.

usage: python3 eval.py MODEL_JSON EVAL_DIR
"""
import csv
import json
import os
import sys

model_path, eval_dir = sys.argv[1], sys.argv[2]
centroids = json.load(open(model_path))["centroids"]
total = correct = 0
with open(os.path.join(eval_dir, "points.csv")) as f:
    for r in csv.DictReader(f):
        x, y = float(r["x"]), float(r["y"])
        guess = min(centroids, key=lambda label: (centroids[label][0] - x) ** 2 + (centroids[label][1] - y) ** 2)
        total += 1
        correct += guess == r["label"]
accuracy = correct / total
if os.environ.get("MLV_METRICS_FILE"):
    with open(os.environ["MLV_METRICS_FILE"], "a") as m:
        m.write(json.dumps({"eval_acc": accuracy}) + "\n")
print(f"eval: {total} points, accuracy {accuracy:.3f}")
