#!/usr/bin/env python3
"""Writes tests/fixtures/ner/seqeval.json: hand-made tag sequences (IOB2, IOB1, BIOES,
entities starting with I-, type changes inside a chunk) and the metrics seqeval computes for
them in its default mode, which tests/token_metrics.rs compares against.

Run once in a throw-away virtual environment with seqeval installed:
    python scripts/make-seqeval-fixture.py [OUT_FILE]
"""

import json
import pathlib
import sys

import seqeval
from seqeval.metrics import (accuracy_score, classification_report, f1_score,
                             precision_score, recall_score)
from seqeval.metrics.sequence_labeling import get_entities

OUT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/ner/seqeval.json")

CASES = {
    "iob2": (
        [["B-PER", "I-PER", "O", "B-LOC", "O"], ["B-ORG", "I-ORG", "I-ORG", "O"]],
        [["B-PER", "I-PER", "O", "B-ORG", "O"], ["B-ORG", "I-ORG", "O", "O"]],
    ),
    "starts_with_i": (
        [["I-PER", "I-PER", "O", "I-LOC"], ["O", "I-MISC", "B-MISC", "O"]],
        [["B-PER", "I-PER", "O", "I-LOC"], ["O", "I-MISC", "I-MISC", "O"]],
    ),
    "iob1": (
        [["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-LOC"], ["O", "I-ORG", "O"]],
        [["I-PER", "I-PER", "I-PER", "O", "I-LOC", "B-LOC"], ["O", "I-ORG", "O"]],
    ),
    "bioes": (
        [["S-PER", "O", "B-LOC", "I-LOC", "E-LOC", "S-ORG"], ["B-PER", "E-PER", "O", "S-MISC"]],
        [["S-PER", "O", "B-LOC", "E-LOC", "S-LOC", "S-ORG"], ["B-PER", "I-PER", "O", "S-MISC"]],
    ),
    "type_change_inside": (
        [["B-PER", "I-LOC", "I-LOC", "O", "B-ORG", "I-ORG"]],
        [["B-PER", "I-PER", "I-LOC", "O", "B-ORG", "B-ORG"]],
    ),
    "no_predictions": (
        [["B-PER", "O", "O"], ["O", "B-LOC", "I-LOC"]],
        [["O", "O", "O"], ["O", "O", "O"]],
    ),
}


def case(truth, pred):
    report = classification_report(truth, pred, output_dict=True, zero_division=0)
    per_type = {k: {"precision": v["precision"], "recall": v["recall"], "f1": v["f1-score"],
                    "support": int(v["support"])}
                for k, v in report.items() if not k.endswith(" avg")}
    return {
        "truth": truth, "pred": pred,
        "truth_entities": [list(e) for e in get_entities(truth)],
        "precision": precision_score(truth, pred, zero_division=0),
        "recall": recall_score(truth, pred, zero_division=0),
        "f1": f1_score(truth, pred, zero_division=0),
        "accuracy": accuracy_score(truth, pred),
        "per_type": per_type,
    }


record = {"seqeval": seqeval.__version__ if hasattr(seqeval, "__version__") else "1.2.2",
          "cases": {name: case(*tp) for name, tp in CASES.items()}}
OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps(record, indent=1) + "\n")
print(OUT)
