"""Benchmark: mlsys.augment's batched implementations against the naive per-item way.

Baselines:
- image rotation and crop: scipy.ndimage per image (rotate order=1 / shift), the usual NumPy route;
- DeepFool: the same algorithm run one image at a time (batch_size=1, ART's default), and the
  Adversarial Robustness Toolbox's DeepFool (dev-only dependency) on the same batch;
- BERT-style masking: a Python loop over tokens.
Run:
    .venv/bin/python bench/bench_augment.py [--images N] [--repeat R]
"""
import argparse
import time

import numpy as np


def timeit(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def markdown(rows) -> str:
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=2000, help="Fashion-MNIST images for the transform timings")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing (minimum reported)")
    args = ap.parse_args()

    import torch
    from scipy import ndimage

    from mlsys.augment.image import RandomCrop, rotate, to_image_tensor
    from mlsys.augment.perturb import deepfool, make_mlp, train_classifier
    from mlsys.augment.text import bert_mask_ids
    from mlsys.datasets import load_digits, load_fashion_mnist

    torch.set_num_threads(1)
    rows = []
    fx, _ = load_fashion_mnist("train", sample=args.images, as_arrays=True)
    x = to_image_tensor(fx)
    arr = x[:, 0].numpy()
    angles = np.random.default_rng(0).uniform(-15, 15, len(arr))

    t_ours = timeit(lambda: rotate(x, torch.from_numpy(angles).float()), args.repeat)
    t_base = timeit(lambda: [ndimage.rotate(a, t, reshape=False, order=1) for a, t in zip(arr, angles)], args.repeat)
    rows.append({"task": f"rotate {len(arr)} 28x28 images", "baseline": "scipy.ndimage.rotate per image",
                 "baseline_s": t_base, "mlsys_s": t_ours, "speedup": t_base / t_ours})

    shifts = np.random.default_rng(1).integers(-2, 3, (len(arr), 2))
    crop = RandomCrop(2)
    g = torch.Generator().manual_seed(0)
    t_ours = timeit(lambda: crop(x, generator=g), args.repeat)
    t_base = timeit(lambda: [ndimage.shift(a, s, order=0) for a, s in zip(arr, shifts)], args.repeat)
    rows.append({"task": f"random crop (pad 2) of {len(arr)} images", "baseline": "scipy.ndimage.shift per image",
                 "baseline_s": t_base, "mlsys_s": t_ours, "speedup": t_base / t_ours})

    dx, dy = load_digits(as_arrays=True)
    X = torch.from_numpy(dx / 16.0).float().unsqueeze(1)
    Y = torch.from_numpy(dy)
    model = train_classifier(make_mlp(64, 10), X[:1200], Y[:1200], epochs=10)
    xs = X[1200:1500]
    t_ours = timeit(lambda: deepfool(model, xs), args.repeat)
    t_base = timeit(lambda: [deepfool(model, xs[i:i + 1]) for i in range(len(xs))], 1)
    batched, single = deepfool(model, xs), [deepfool(model, xs[i:i + 1]) for i in range(20)]
    same = all(torch.allclose(batched.perturbation[i], s.perturbation[0], atol=1e-5) for i, s in enumerate(single))
    rows.append({"task": f"DeepFool on {len(xs)} digits (MLP)", "baseline": "same algorithm, one image at a time",
                 "baseline_s": t_base, "mlsys_s": t_ours, "speedup": t_base / t_ours})
    try:
        from art.attacks.evasion import DeepFool
        from art.estimators.classification import PyTorchClassifier
    except ImportError:
        art_note = "ART not installed: skipped the ART DeepFool comparison"
    else:
        clf = PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 8, 8), nb_classes=10)
        attack = DeepFool(clf, max_iter=50, epsilon=0.02, nb_grads=10, batch_size=len(xs), verbose=False)
        t_art = timeit(lambda: attack.generate(xs.numpy()), args.repeat)
        adv = attack.generate(xs.numpy())
        l2_art = np.linalg.norm((adv - xs.numpy()).reshape(len(xs), -1), axis=1)
        rel = np.median(np.abs(l2_art - batched.l2.numpy()) / batched.l2.numpy())
        art_note = (f"ART DeepFool: mean L2 {l2_art.mean():.4f} vs mlsys {batched.mean_l2:.4f} "
                    f"(median relative difference per image {rel:.2e})")
        rows.append({"task": f"DeepFool on {len(xs)} digits (MLP)", "baseline": "ART 1.20 DeepFool (batch of 300)",
                     "baseline_s": t_art, "mlsys_s": t_ours, "speedup": t_art / t_ours})

    rng = np.random.default_rng(0)
    ids = rng.integers(1, 30000, 500_000)

    def loop():
        r = np.random.default_rng(0)
        out = ids.copy()
        for i in range(len(out)):
            if r.random() < 0.15:
                u = r.random()
                if u < 0.8:
                    out[i] = 0
                elif u < 0.9:
                    out[i] = r.integers(0, 30000)
        return out

    t_ours = timeit(lambda: bert_mask_ids(ids, 30000, 0, np.random.default_rng(0)), args.repeat)
    t_base = timeit(loop, 1)
    rows.append({"task": "BERT-style masking of 500k token ids", "baseline": "Python loop over tokens",
                 "baseline_s": t_base, "mlsys_s": t_ours, "speedup": t_base / t_ours})

    print(f"CPU, torch threads = 1; min of {args.repeat} runs (baselines looping per item: 1 run)")
    print(f"batched DeepFool perturbations equal the one-at-a-time ones (first 20 images): {same}")
    print(art_note + "\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
