"""How exact the served anomaly scores are: the shipped models' scores of their 1,000 validation
images through the ONNX graphs (service.models.scores, as /score and export compute them) against
the Bernoulli likelihood of the same PyTorch model in float64 (rebuilt from the folder's
TorchScript weights). An accuracy check, not a speed one: it writes
bench/results/score_exactness.json.

    python bench/score_exactness.py
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.anomaly import GraphScorer  # noqa: E402 (the project from any folder)
from training.export import manifest_config, model_from_folder  # noqa: E402
from training.train import load_data  # noqa: E402
from training.zoo import load_zoo  # noqa: E402

report = {}
for name in (entry.name for entry in load_zoo()):
    folder = ROOT / "exported_models" / name
    model, m = model_from_folder(folder)
    k = m.num_classes if m.conditional else 0
    val = load_data(manifest_config(m)).val.images.numpy()[:1000]
    scorer = GraphScorer(folder, variational=m.variational, num_classes=k, reconstruction="bce")
    served = scorer(m.calibration.score.name, val)
    model = model.double().eval()
    x = torch.from_numpy(val).double()
    best = None
    with torch.no_grad():
        for c in range(k) if k else [None]:
            lab = (
                None
                if c is None
                else torch.nn.functional.one_hot(torch.full((len(x),), c), k).double()
            )
            out = model.encoder(x, lab)
            mean, logvar = out if m.variational else (out, None)
            logits = model.decoder.logits(mean, lab).flatten(1)
            nll = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, x.flatten(1), reduction="none"
            ).sum(1)
            if logvar is not None:
                nll = nll + 0.5 * (mean**2 + logvar.exp() - 1 - logvar).sum(1)
            best = nll if best is None else torch.minimum(best, nll)
    d = np.abs(served - best.numpy())
    report[name] = {"largest": float(d.max()), "mean": float(d.mean()), "images": len(val)}
    print(f"{name}: largest |served - float64| over {len(val)} images: {d.max():.2e} nats")
out = ROOT / "bench" / "results" / "score_exactness.json"
out.write_text(json.dumps(report, indent=2) + "\n")
print(f"wrote {out}")
