"""Bad input to every public entry point of mlsys.augment.image is refused with a named mlsys error.

One row per case: (callable, the mlsys error expected, a fragment of its message that names the input).
A sweep then feeds every entry point generic bad values and fails on any raw library error.
"""

import numpy as np
import pytest
from badinput import each, raw_errors

from mlsys.core import ConfigError, DataError, MlsysError

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from mlsys.augment.image import (  # noqa: E402 - after the torch guard
    ColorJitter,
    Compose,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    RandomRotation,
    check_images,
    default_transforms,
    plot_augmented_grid,
    rotate,
    to_image_tensor,
)

torch.set_num_threads(1)
X = torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(0))
NAN = torch.full((3, 1, 6, 6), float("nan"))
TRANSFORMS = [RandomCrop(), RandomHorizontalFlip(), RandomRotation(), RandomErasing(), ColorJitter(), default_transforms()]


def no_generator(x):
    return x


CASES = [
    # the issue's own case (item 11)
    ("check_images(all NaN)", lambda: check_images(NAN), DataError, "images must hold finite values in [0, 1]: 108 of 108 are NaN or infinite"),
    # the same classes elsewhere
    ("check_images(one inf)", lambda: check_images(torch.where(X > 0.99, torch.inf, X)), DataError, "are NaN or infinite"),
    ("check_images(0-255)", lambda: check_images(X * 255), DataError, "images must hold finite values in [0, 1]: got range"),
    ("check_images(negative)", lambda: check_images(X - 1), DataError, "got range"),
    ("check_images(empty batch)", lambda: check_images(torch.rand(0, 1, 6, 6)), DataError, "images has an empty dimension: shape (0, 1, 6, 6)"),
    ("check_images(name=5)", lambda: check_images(X, 5), ConfigError, "name must be a string"),
    ("check_images(complex)", lambda: check_images(X.to(torch.complex64)), DataError, "must be a floating-point tensor"),
    ("to_image_tensor(NaN)", lambda: to_image_tensor(np.full((3, 6, 6), np.nan)), DataError, "images hold 108 NaN or infinite values"),  # came back NaN
    ("to_image_tensor(inf)", lambda: to_image_tensor(np.full((3, 6, 6), np.inf)), DataError, "NaN or infinite values"),
    ("to_image_tensor(empty)", lambda: to_image_tensor(np.zeros((0, 6, 6))), DataError, "images has an empty dimension"),
    ("to_image_tensor(None)", lambda: to_image_tensor(None), DataError, "images must be an array shaped"),
    ("to_image_tensor(complex)", lambda: to_image_tensor(np.ones((3, 6, 6)) * 1j), DataError, "images must be numeric, got dtype complex128"),
    ("to_image_tensor(max_value='x')", lambda: to_image_tensor(np.ones((3, 6, 6)), "x"), ConfigError, "max_value must be positive"),
    ("to_image_tensor(max_value=True)", lambda: to_image_tensor(np.ones((3, 6, 6)), True), ConfigError, "max_value must be positive"),
    ("to_image_tensor(max_value=inf)", lambda: to_image_tensor(np.ones((3, 6, 6)), np.inf), ConfigError, "max_value"),  # all zeros
    ("RandomCrop(padding=2**40)", lambda: RandomCrop(2**40), ConfigError, "padding must be a non-negative int (at most 4096)"),
    ("RandomCrop(padding=1.5)", lambda: RandomCrop(1.5), ConfigError, "padding"),
    ("RandomCrop(too big for the batch)", lambda: RandomCrop(4096)(torch.rand(40, 1, 6, 6)), DataError, "padding=4096 around 40 images"),
    ("RandomCrop(fill=None)", lambda: RandomCrop(fill=None), ConfigError, "fill must be a finite number"),
    ("RandomCrop(fill='x')", lambda: RandomCrop(fill="x"), ConfigError, "fill must be a finite number"),
    ("RandomCrop(fill=nan)", lambda: RandomCrop(fill=np.nan), ConfigError, "fill"),  # NaN borders
    ("RandomCrop(fill=True)", lambda: RandomCrop(fill=True), ConfigError, "fill"),
    ("RandomHorizontalFlip(p=nan)", lambda: RandomHorizontalFlip(np.nan), ConfigError, "p must be a probability in [0, 1]"),
    ("rotate(angles=None)", lambda: rotate(X, None), DataError, "angles must be a number or one number per image, got NoneType"),
    ("rotate(angles='x')", lambda: rotate(X, "x"), DataError, "angles must be a number"),
    ("rotate(angles=True)", lambda: rotate(X, True), DataError, "angles must be a number"),
    ("rotate(angles=nan)", lambda: rotate(X, np.nan), DataError, "angles hold NaN or infinite values"),  # NaN images
    ("rotate(angles=[nan]*3)", lambda: rotate(X, torch.tensor([np.nan] * 3)), DataError, "angles hold NaN"),
    ("rotate(angles=[1, 2])", lambda: rotate(X, [1.0, 2.0]), DataError, "angles must hold 1 or 3 values, got 2"),
    ("rotate(fill=None)", lambda: rotate(X, 10.0, None), ConfigError, "fill must be a finite number"),
    ("rotate(fill=True)", lambda: rotate(X, 10.0, True), ConfigError, "fill"),
    ("rotate(empty batch)", lambda: rotate(torch.rand(0, 1, 6, 6), 10.0), DataError, "images has an empty dimension"),  # raw ValueError
    ("rotate(NaN images)", lambda: rotate(NAN, 10.0), DataError, "images must hold finite values"),
    ("RandomRotation(degrees=nan)", lambda: RandomRotation(np.nan), ConfigError, "degrees must be a number in [0, 180]"),
    ("RandomRotation(fill='x')", lambda: RandomRotation(fill="x"), ConfigError, "fill must be a finite number"),
    ("RandomErasing(scale=None)", lambda: RandomErasing(scale=None), ConfigError, "scale must be (low, high)"),
    ("RandomErasing(scale=1.5)", lambda: RandomErasing(scale=1.5), ConfigError, "scale must be (low, high)"),
    ("RandomErasing(scale='ab')", lambda: RandomErasing(scale="ab"), ConfigError, "scale must be (low, high)"),
    ("RandomErasing(scale=(nan, 0.2))", lambda: RandomErasing(scale=(np.nan, 0.2)), ConfigError, "scale must be"),
    ("RandomErasing(ratio=(1, inf))", lambda: RandomErasing(ratio=(1, np.inf)), ConfigError, "ratio must be (low, high) with 0 < low <= high (finite)"),
    ("RandomErasing(ratio=None)", lambda: RandomErasing(ratio=None), ConfigError, "ratio must be"),
    ("RandomErasing(ratio=(1, 2, 3))", lambda: RandomErasing(ratio=(1, 2, 3)), ConfigError, "ratio must be"),
    ("RandomErasing(value=None)", lambda: RandomErasing(value=None), ConfigError, "value must be a finite number"),
    ("RandomErasing(value=nan)", lambda: RandomErasing(value=np.nan), ConfigError, "value"),
    ("ColorJitter(contrast=nan)", lambda: ColorJitter(contrast=np.nan), ConfigError, "contrast must be a number in [0, 1]"),
    ("Compose(None)", lambda: Compose(None), ConfigError, "transforms must be a list of callables, got NoneType"),
    ("Compose(one transform)", lambda: Compose(RandomCrop()), ConfigError, "transforms must be a list of callables, got RandomCrop"),
    ("Compose({})", lambda: Compose({}), ConfigError, "transforms must be a list"),
    ("Compose('ab')", lambda: Compose("ab"), ConfigError, "transforms must be a list"),
    ("Compose([None])", lambda: Compose([None]), ConfigError, "transforms must be callables, got None"),
    ("Compose(no generator argument)", lambda: Compose([no_generator]), ConfigError, "takes no generator argument"),
    ("Compose(a step returns NaN)", lambda: Compose([lambda x, generator=None: x * np.nan])(X), DataError, "the output of <function"),
    ("Compose(NaN)", lambda: Compose([RandomCrop()])(NAN), DataError, "images must hold finite values"),
    ("default_transforms(hflip='x')", lambda: default_transforms("x"), ConfigError, "hflip must be True or False"),
    ("default_transforms(hflip=None)", lambda: default_transforms(None), ConfigError, "hflip must be True or False"),
    ("plot_augmented_grid(transform=None)", lambda: plot_augmented_grid(X, None, 2, 2), ConfigError, "transform must be a callable"),
    ("plot_augmented_grid(n_images=0)", lambda: plot_augmented_grid(X, RandomCrop(), 0, 2), ConfigError, "n_images must be an integer in [1, 50]"),
    ("plot_augmented_grid(n_images=True)", lambda: plot_augmented_grid(X, RandomCrop(), True, 2), ConfigError, "n_images"),
    ("plot_augmented_grid(n_images=5)", lambda: plot_augmented_grid(X, RandomCrop(), 5, 2), DataError, "at least n_images=5 images"),
    ("plot_augmented_grid(n_copies=0)", lambda: plot_augmented_grid(X, RandomCrop(), 2, 0), ConfigError, "n_copies must be an integer in [1, 20]"),
    ("plot_augmented_grid(n_copies=10**6)", lambda: plot_augmented_grid(X, RandomCrop(), 2, 10**6), ConfigError, "n_copies"),  # hung
    ("plot_augmented_grid(seed='x')", lambda: plot_augmented_grid(X, RandomCrop(), 2, 2, seed="x"), ConfigError, "seed must be a non-negative integer"),
    ("plot_augmented_grid(seed=-1)", lambda: plot_augmented_grid(X, RandomCrop(), 2, 2, seed=-1), ConfigError, "seed"),
    ("plot_augmented_grid(titles='ab')", lambda: plot_augmented_grid(X, RandomCrop(), 2, 2, titles="ab"), ConfigError, "titles must be a list of at least n_images=2 strings"),
    ("plot_augmented_grid(titles short)", lambda: plot_augmented_grid(X, RandomCrop(), 2, 2, titles=["a"]), ConfigError, "titles"),
    ("plot_augmented_grid(title=5)", lambda: plot_augmented_grid(X, RandomCrop(), 2, 2, title=5), ConfigError, "title must be a string"),
]


@pytest.mark.parametrize("fn, error, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_named(fn, error, fragment):
    import matplotlib.pyplot as plt
    with pytest.raises(error) as info:
        fn()
    plt.close("all")
    assert isinstance(info.value, MlsysError)
    assert fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("t", TRANSFORMS, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("bad, error, fragment", [
    (NAN, DataError, "images must hold finite values in [0, 1]"),  # was transformed into NaN images
    (X * 255, DataError, "got range"),
    (torch.rand(0, 1, 6, 6), DataError, "images has an empty dimension"),
])
def test_every_transform_refuses_bad_images(t, bad, error, fragment):
    with pytest.raises(error) as info:
        t(bad)
    assert fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("t", TRANSFORMS, ids=lambda t: type(t).__name__)
@pytest.mark.parametrize("gen", ["x", True, 1.5, np.random.default_rng(0)], ids=["str", "bool", "float", "numpy"])
def test_every_transform_names_a_bad_generator(t, gen):
    with pytest.raises(ConfigError, match="generator must be a torch.Generator or None"):
        t(X, generator=gen)


def test_good_input_unchanged():
    "float16 stays float16 through ColorJitter (it came back float32); markers outside [0, 1] still erase; foreign steps run."
    h = X.half()
    assert ColorJitter()(h, generator=torch.Generator().manual_seed(0)).dtype == torch.float16
    assert default_transforms()(h, generator=torch.Generator().manual_seed(0)).dtype == torch.float16
    out = RandomErasing(p=1.0, value=-1.0)(X, generator=torch.Generator().manual_seed(0))
    assert (out == -1).any()
    double = Compose([RandomCrop(1), lambda x, generator=None: x * 0.5, RandomHorizontalFlip(1.0)])
    single = double(X[0], generator=torch.Generator().manual_seed(0))
    assert single.shape == X[0].shape and float(single.max()) <= 0.5
    nested = Compose([Compose([RandomCrop(1)]), RandomRotation(5)])
    torch.testing.assert_close(nested(X, generator=torch.Generator().manual_seed(3)),
                               Compose([RandomCrop(1), RandomRotation(5)])(X, generator=torch.Generator().manual_seed(3)))




def test_sweep_no_entry_point_raises_a_raw_error():
    "Every entry point and parameter, every generic bad value: refused by an mlsys error, or accepted."
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calls = {
        **each(check_images, x=X, name="images"),
        **each(to_image_tensor, images=X.numpy()[:, 0], max_value=None),
        **each(rotate, x=X, angles=10.0, fill=0.0),
        **each(default_transforms, hflip=True),
        **each(plot_augmented_grid, images=X, transform=RandomCrop(), n_images=2, n_copies=2, seed=0, titles=None, title="t"),
        **{f"RandomCrop.{k}": (lambda v, k=k: RandomCrop(**{k: v})(X)) for k in ("padding", "fill")},
        "RandomHorizontalFlip.p": lambda v: RandomHorizontalFlip(v)(X),
        **{f"RandomRotation.{k}": (lambda v, k=k: RandomRotation(**{k: v})(X)) for k in ("degrees", "fill")},
        **{f"RandomErasing.{k}": (lambda v, k=k: RandomErasing(**{k: v})(X)) for k in ("p", "scale", "ratio", "value")},
        **{f"ColorJitter.{k}": (lambda v, k=k: ColorJitter(**{k: v})(X)) for k in ("brightness", "contrast")},
        "Compose.transforms": lambda v: Compose(v)(X),
        **{f"{type(t).__name__}.__call__.x": (lambda v, t=t: t(v)) for t in TRANSFORMS},
        **{f"{type(t).__name__}.__call__.generator": (lambda v, t=t: t(X, generator=v)) for t in TRANSFORMS},
    }
    assert raw_errors(calls, after=lambda: plt.close("all")) == []
