#!/usr/bin/python3
"""Behaviour cloning for Kura: an MLP from the observation's numeric features to the action.

Kura runs this with the training set at /data (NumPy files and meta.json, read-only), the run's
hyperparameters at /data/hyperparameters.json, and /out writable. It leaves /out/model.onnx and
/out/policy.json, a Kura ONNX policy whose graph normalizes its inputs and un-normalizes its
action itself, so the policy needs no stats at act time. Each JSON line it prints is a metric.
Needs only numpy and torch (Debian: python3-numpy python3-torch).
"""
import json
import os
import sys
import time

import numpy as np
import torch

DATA = os.environ.get("KURA_DATA_DIR", "/data")
OUT = os.environ.get("KURA_OUT_DIR", "/out")

DEFAULTS = {
    "observation": ["observation.state"],
    "action": "action",
    "hidden": 256,
    "layers": 2,
    "epochs": 20,
    "batchSize": 256,
    "learningRate": 1e-3,
    "weightDecay": 0.0,
    "validationFraction": 0.05,
    "seed": 0,
    # One thread: Debian's torch uses the reference BLAS, and two threads on two shared cores spin
    # (measured: an epoch of 100,000 steps took 67 s with 2, 14 s with 1; docs/benchmarks.md).
    "threads": 1,
    "logEvery": 50,
}


def metric(**fields):
    print(json.dumps(fields), flush=True)


def load_hyperparameters():
    params = dict(DEFAULTS)
    path = os.path.join(DATA, "hyperparameters.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            given = json.load(f)
        unknown = sorted(set(given) - set(DEFAULTS))
        if unknown:
            sys.exit(f"unknown hyperparameters: {', '.join(unknown)} (known: {', '.join(sorted(DEFAULTS))})")
        params.update(given)
    return params


def feature_array(meta, name):
    spec = meta["features"].get(name)
    if spec is None:
        sys.exit(f'the training set has no feature "{name}" (it has: {", ".join(sorted(meta["features"]))})')
    # Memory-mapped: the training set is never copied whole into this process's memory.
    array = np.load(os.path.join(DATA, spec["file"]), mmap_mode="r")
    return array.reshape(array.shape[0], -1)


def stats_of(meta, name, array):
    """Mean and std per component, from meta.json's stats (the whole training set) when given."""
    stats = meta.get("stats", {}).get(name, {})
    mean = np.asarray(stats["mean"], dtype=np.float32) if "mean" in stats else array.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = np.asarray(stats["std"], dtype=np.float32) if "std" in stats else array.std(axis=0, dtype=np.float64).astype(np.float32)
    return mean.reshape(-1), np.maximum(std.reshape(-1), 1e-6)


class Policy(torch.nn.Module):
    """z-score the inputs, run the MLP, un-normalize the action: all inside the exported graph."""

    def __init__(self, in_stats, out_stats, hidden, layers):
        super().__init__()
        self.in_means = torch.nn.ParameterList([torch.nn.Parameter(torch.from_numpy(m), requires_grad=False) for m, _ in in_stats])
        self.in_stds = torch.nn.ParameterList([torch.nn.Parameter(torch.from_numpy(s), requires_grad=False) for _, s in in_stats])
        self.out_mean = torch.nn.Parameter(torch.from_numpy(out_stats[0]), requires_grad=False)
        self.out_std = torch.nn.Parameter(torch.from_numpy(out_stats[1]), requires_grad=False)
        width = sum(m.shape[0] for m, _ in in_stats)
        blocks = []
        for _ in range(layers):
            blocks += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
            width = hidden
        blocks.append(torch.nn.Linear(width, out_stats[0].shape[0]))
        self.mlp = torch.nn.Sequential(*blocks)

    def normalized(self, *inputs):
        parts = [(x.reshape(x.shape[0], -1) - m) / s for x, m, s in zip(inputs, self.in_means, self.in_stds)]
        return self.mlp(torch.cat(parts, dim=1))

    def forward(self, *inputs):
        return self.normalized(*inputs) * self.out_std + self.out_mean


def main():
    started = time.monotonic()
    params = load_hyperparameters()
    torch.manual_seed(int(params["seed"]))
    torch.set_num_threads(max(1, int(params["threads"])))
    with open(os.path.join(DATA, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)

    names = list(params["observation"])
    inputs = [feature_array(meta, name) for name in names]
    action = feature_array(meta, params["action"])
    episodes = np.load(os.path.join(DATA, "episode_index.npy"), mmap_mode="r")
    steps = action.shape[0]
    if steps == 0:
        sys.exit("the training set has no steps")

    # Whole episodes for validation, so it measures generalisation rather than memory of neighbours.
    rng = np.random.default_rng(int(params["seed"]))
    unique = np.unique(episodes)
    held = rng.permutation(unique)[: max(1, int(len(unique) * float(params["validationFraction"])))] if len(unique) > 1 else []
    validation = np.isin(episodes, held)
    train_rows = np.flatnonzero(~validation)
    valid_rows = np.flatnonzero(validation)

    in_stats = [stats_of(meta, name, array) for name, array in zip(names, inputs)]
    out_stats = stats_of(meta, params["action"], action)
    model = Policy(in_stats, out_stats, int(params["hidden"]), int(params["layers"]))
    optimiser = torch.optim.AdamW(model.parameters(), lr=float(params["learningRate"]), weight_decay=float(params["weightDecay"]))
    out_mean, out_std = torch.from_numpy(out_stats[0]), torch.from_numpy(out_stats[1])

    def batch(rows):
        xs = [torch.from_numpy(np.ascontiguousarray(array[rows], dtype=np.float32)) for array in inputs]
        y = torch.from_numpy(np.ascontiguousarray(action[rows], dtype=np.float32))
        return xs, (y - out_mean) / out_std

    def validation_mse():
        if len(valid_rows) == 0:
            return None
        with torch.no_grad():
            total = 0.0
            for start in range(0, len(valid_rows), 8192):
                rows = valid_rows[start : start + 8192]
                xs, _ = batch(rows)
                y = torch.from_numpy(np.ascontiguousarray(action[rows], dtype=np.float32))
                total += float(((model(*xs) - y) ** 2).mean(dim=1).sum())
            return total / len(valid_rows)

    size = int(params["batchSize"])
    step = 0
    for epoch in range(int(params["epochs"])):
        order = rng.permutation(train_rows)
        for start in range(0, len(order), size):
            rows = np.sort(order[start : start + size])  # sorted reads are kinder to memory-mapped files
            xs, y = batch(rows)
            loss = torch.nn.functional.mse_loss(model.normalized(*xs), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            if step % int(params["logEvery"]) == 0:
                metric(step=step, epoch=epoch, loss=float(loss))
        mse = validation_mse()
        metric(step=step, epoch=epoch, loss=float(loss), **({"validationMse": mse} if mse is not None else {}))

    os.makedirs(OUT, exist_ok=True)
    model.eval()
    examples = tuple(torch.zeros(1, array.shape[1]) for array in inputs)
    torch.onnx.export(
        model,
        examples,
        os.path.join(OUT, "model.onnx"),
        input_names=names,
        output_names=["action"],
        dynamic_axes={**{name: {0: "batch"} for name in names}, "action": {0: "batch"}},
        opset_version=14,
    )
    manifest = {
        "name": os.environ.get("KURA_POLICY_NAME", "bc-mlp"),
        "runtime": "onnx",
        "entry": "model.onnx",
        "observation": names,
        "observationShapes": {name: [array.shape[1]] for name, array in zip(names, inputs)},
        "action": {"shape": [action.shape[1]]},
        "description": f"bc-mlp: {int(params['layers'])}x{int(params['hidden'])} MLP, {int(params['epochs'])} epochs on {steps} steps",
    }
    with open(os.path.join(OUT, "policy.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    metric(step=step, seconds=round(time.monotonic() - started, 3), stepsPerSecond=round(step * size / max(time.monotonic() - started, 1e-9), 1))


if __name__ == "__main__":
    main()
