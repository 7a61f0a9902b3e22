"""Trains a nearest-centroid classifier on the train split (pure Python): one centroid
per label. Logs the training accuracy to mlv when run under `mlv run`.

usage: python3 train.py TRAIN_DIR MODEL_JSON
"""
import csv
import json
import os
import sys

train_dir, model_path = sys.argv[1], sys.argv[2]
points = {}
with open(os.path.join(train_dir, "points.csv")) as f:
    for r in csv.DictReader(f):
        points.setdefault(r["label"], []).append((float(r["x"]), float(r["y"])))
centroids = {label: [sum(p[0] for p in ps) / len(ps), sum(p[1] for p in ps) / len(ps)] for label, ps in points.items()}


def predict(x, y):
    return min(centroids, key=lambda label: (centroids[label][0] - x) ** 2 + (centroids[label][1] - y) ** 2)


total = sum(len(ps) for ps in points.values())
correct = sum(predict(x, y) == label for label, ps in points.items() for x, y in ps)
os.makedirs(os.path.dirname(model_path) or ".", exist_ok=True)
with open(model_path, "w") as f:
    json.dump({"kind": "nearest-centroid", "centroids": centroids}, f, sort_keys=True, indent=1)
accuracy = correct / total
if os.environ.get("MLV_METRICS_FILE"):
    with open(os.environ["MLV_METRICS_FILE"], "a") as m:
        m.write(json.dumps({"train_acc": accuracy}) + "\n")
print(f"train: {total} points, train accuracy {accuracy:.3f}")
