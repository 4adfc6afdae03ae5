"""Image augmentation: exact geometric properties, determinism and bad input."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from mlsys.augment.image import (ColorJitter, Compose, RandomCrop, RandomErasing, RandomHorizontalFlip,
                                 RandomRotation, check_images, default_transforms, rotate, to_image_tensor)
from mlsys.core import ConfigError, DataError
from mlsys.datasets import load_digits

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(as_arrays=True)
    return to_image_tensor(x[:200]), y[:200]


def test_to_image_tensor_scales_and_adds_channel(digits):
    x, _ = digits
    assert x.shape == (200, 1, 8, 8) and x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0


def test_to_image_tensor_does_not_rescale_scaled_images_and_rejects_wrong_scale():
    from mlsys.datasets import load_fashion_mnist
    fx, _ = load_fashion_mnist("test", sample=50, random_state=0, as_arrays=True)
    raw = to_image_tensor(fx)
    assert float(raw.max()) == 1.0
    torch.testing.assert_close(to_image_tensor(fx / 255.0), raw)  # [0, 1] input is not divided again
    with pytest.raises(DataError, match=r"outside \[0, max_value=16\]"):
        to_image_tensor(fx, max_value=16)
    with pytest.raises(DataError, match="outside"):
        to_image_tensor(fx.astype(float) - 1)
    with pytest.raises(DataError, match="outside"):
        to_image_tensor(fx.astype(float) * 4)


def test_flip_matches_torch_flip_and_is_an_involution(digits):
    x, _ = digits
    f = RandomHorizontalFlip(1.0)
    assert torch.equal(f(x), torch.flip(x, dims=[-1]))
    assert torch.equal(f(f(x)), x)
    assert torch.equal(RandomHorizontalFlip(0.0)(x), x)


def test_rotation_reference_cases(digits):
    x, _ = digits
    torch.testing.assert_close(rotate(x, 0.0), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate(x, 90.0), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-4, rtol=0)
    torch.testing.assert_close(rotate(x, 180.0), torch.rot90(x, 2, dims=(-2, -1)), atol=1e-4, rtol=0)


def test_rotation_matches_scipy_on_interior():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    img = rng.random((21, 21)).astype("float32")
    ours = rotate(torch.from_numpy(img)[None, None], 30.0)[0, 0].numpy()
    # scipy rotates counter-clockwise in (row, col) display terms with order=1 (bilinear)
    ref = ndimage.rotate(img, 30.0, reshape=False, order=1, mode="constant", cval=0.0)
    inner = slice(6, 15)
    np.testing.assert_allclose(ours[inner, inner], ref[inner, inner], atol=1e-4)


def test_crop_is_a_shift_with_zero_fill(digits):
    x, _ = digits
    out = RandomCrop(padding=2)(x, generator=torch.Generator().manual_seed(0))
    p = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(30):
        hits = [(dy, dx) for dy in range(5) for dx in range(5) if torch.equal(p[i, :, dy:dy + 8, dx:dx + 8], out[i])]
        assert hits, f"image {i} is not a shift of the input"
    assert torch.equal(RandomCrop(padding=0)(x), x)


def test_erasing_share_within_scale(digits):
    x = torch.rand(500, 1, 28, 28)
    out = RandomErasing(p=1.0, scale=(0.1, 0.2), value=-1.0)(x, generator=torch.Generator().manual_seed(0))
    share = (out == -1).float().mean((1, 2, 3))
    assert share.min() >= 0.1 * 0.6 and share.max() <= 0.2 * 1.25
    # unerased pixels are untouched
    keep = out != -1
    assert torch.equal(out[keep], x[keep])


def test_jitter_neutral_and_bounded(digits):
    x, _ = digits
    assert torch.equal(ColorJitter(0, 0)(x), x)
    out = ColorJitter(0.5, 0.5)(x, generator=torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() <= 1


def test_compose_is_deterministic_given_generator(digits):
    x, _ = digits
    pipe = default_transforms(hflip=False)
    a = pipe(x, generator=torch.Generator().manual_seed(5))
    b = pipe(x, generator=torch.Generator().manual_seed(5))
    c = pipe(x, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert pipe(x[0]).shape == (1, 8, 8)


def test_per_image_randomness(digits):
    x = digits[0][:1].expand(64, -1, -1, -1).clone()
    out = RandomRotation(20)(x, generator=torch.Generator().manual_seed(0))
    assert len({round(float(v), 5) for v in out.sum((1, 2, 3))}) > 30


@pytest.mark.parametrize("bad, msg", [
    (lambda: torch.zeros(8, 8), "(C, H, W) or (N, C, H, W)"),
    (lambda: torch.zeros(1, 1, 1, 8, 8), "(C, H, W) or (N, C, H, W)"),
    (lambda: torch.zeros(2, 1, 8, 8, dtype=torch.uint8), "floating-point"),
    (lambda: np.zeros((2, 1, 8, 8), "float32"), "must be a torch.Tensor"),
])
def test_wrong_image_input_is_rejected(bad, msg):
    for t in [RandomCrop(), RandomHorizontalFlip(), RandomRotation(), RandomErasing(), ColorJitter(),
              Compose([RandomCrop()])]:
        with pytest.raises(DataError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            t(bad())


def test_bad_parameters():
    with pytest.raises(ConfigError, match="padding"):
        RandomCrop(padding=-2)
    with pytest.raises(ConfigError, match="p must be a probability"):
        RandomHorizontalFlip(p=2)
    with pytest.raises(ConfigError, match="degrees"):
        RandomRotation(degrees=-1)
    with pytest.raises(ConfigError, match="scale"):
        RandomErasing(scale=(0, 0.5))
    with pytest.raises(ConfigError, match="contrast"):
        ColorJitter(contrast=3)
    with pytest.raises(DataError, match="images must have shape"):
        to_image_tensor(np.zeros(10))
    with pytest.raises(DataError, match="angles must hold"):
        rotate(torch.zeros(3, 1, 8, 8), torch.zeros(2))
    assert check_images(torch.zeros(1, 4, 4)).shape == (1, 4, 4)
