"""Classifying pictures: the bundled model on real digits, preprocessing, and Grad-CAM / saliency against oracles."""
import numpy as np
import pytest
import torch
from PIL import Image

from dlplay.checkpoint import ModelCard
from dlplay.classify import SAMPLE_PHOTOS, colorize, load_bundled_model, overlay, preprocess, probabilities, top_k
from dlplay.images import decode_image
from dlplay.inside import grad_cam, saliency
from dlplay.models import build_model


def test_the_bundled_model_reads_the_held_out_digits(mnist5k):
    model, card = load_bundled_model()
    assert card.dataset == "mnist5k" and card.input_shape == (1, 28, 28) and card.test_accuracy >= 0.98
    probs = probabilities(model, mnist5k.test.images.float() / 255)
    assert (probs.argmax(1) == mnist5k.test.labels).float().mean() >= 0.98
    digit = Image.fromarray(mnist5k.test.images[0, 0].numpy())  # a test digit, through the page's path
    prepared = preprocess(digit, card)
    assert not prepared.inverted
    assert top_k(probabilities(model, prepared.batch)[0], card.class_names, 3)[0][0] == str(int(mnist5k.test.labels[0]))


def test_dark_ink_on_light_paper_is_inverted_and_still_read(mnist5k):
    model, card = load_bundled_model()
    picks = [i for i in range(40)]
    correct = 0
    for i in picks:
        paper = 255 - mnist5k.test.images[i, 0].numpy()  # the same digits, as a photo of pen on paper would be
        big = Image.fromarray(paper).resize((140, 140))
        prepared = preprocess(big.convert("RGB"), card)
        steps = [s for s, _ in prepared.steps]
        assert prepared.inverted and any(s.startswith("inverted") for s in steps) and steps[-1].startswith("centred")
        correct += int(probabilities(model, prepared.batch)[0].argmax()) == int(mnist5k.test.labels[i])
    assert correct >= 37


def drawn_on_a_pad(digit: np.ndarray, size: int, corner: tuple[int, int]) -> Image.Image:
    """An MNIST digit drawn dark on a white 280×280 pad, `size` pixels tall, its top-left at `corner`."""
    pad = Image.new("L", (280, 280), 255)
    pad.paste(Image.fromarray(255 - digit).resize((size, size), Image.Resampling.BILINEAR), corner)
    return pad.convert("RGB")


@pytest.mark.parametrize("size, corner", [(196, (42, 42)), (112, (84, 84)), (112, (10, 150)), (70, (180, 20))],
                         ids=["fills 70%", "small, 40%", "off-centre", "tiny, in a corner"])
def test_digits_drawn_small_large_or_off_centre_are_read_like_mnist(mnist5k, size, corner):
    model, card = load_bundled_model()
    count = 200
    pictures = [drawn_on_a_pad(mnist5k.test.images[i, 0].numpy(), size, corner) for i in range(count)]
    batch = torch.cat([preprocess(picture, card).batch for picture in pictures])
    accuracy = float((probabilities(model, batch).argmax(1) == mnist5k.test.labels[:count]).float().mean())
    assert accuracy >= 0.95  # 31-92% before the MNIST normalisation, depending on size and place


def test_the_mnist_normalisation_fits_the_ink_in_20_by_20_and_centres_its_mass():
    from dlplay.classify import centre_digit
    ink = np.zeros((100, 300), dtype=np.float32)
    ink[10:40, 200:260] = 1.0  # a wide blob off to the side
    steps = centre_digit(ink)
    cropped, fitted, centred = (pixels for _, pixels in steps)
    assert cropped.shape == (30, 60) and fitted.shape == (10, 20) and centred.shape == (28, 28)
    rows, cols = np.indices(centred.shape)
    mass = centred.sum()
    assert abs((rows * centred).sum() / mass - 13.5) <= 0.5 and abs((cols * centred).sum() / mass - 13.5) <= 0.5
    assert centre_digit(np.zeros((50, 50), dtype=np.float32))[0][0].startswith("no ink")


def test_photos_are_fitted_to_a_colour_model():
    card = ModelCard("article-cifar10", tuple("abcdefghij"), (3, 32, 32), (0.5,) * 3, (0.25,) * 3)
    photo = decode_image((SAMPLE_PHOTOS / "chelsea.png").read_bytes())
    prepared = preprocess(photo, card)
    assert prepared.batch.shape == (1, 3, 32, 32) and 0 <= prepared.batch.min() and prepared.batch.max() <= 1
    assert prepared.steps[1][1].shape == (32, 32, 3) and not prepared.inverted


def test_grad_cam_equals_the_textbook_computation():
    torch.manual_seed(0)
    model = build_model("article-cifar10", (3, 32, 32), 10, seed=5).eval()
    x = torch.rand(1, 3, 32, 32)
    target = int(model(x).argmax())  # Grad-CAM is usually asked about the predicted class
    heat = grad_cam(model, x, target=target)
    conv_index = max(i for i, m in enumerate(model) if isinstance(m, torch.nn.Conv2d))
    maps = model[: conv_index + 1](x)  # the last conv layer's output, (1, 128, 4, 4)
    maps.retain_grad()
    model[conv_index + 1:](maps)[0, target].backward()
    cam = torch.relu((maps.grad.mean(dim=(2, 3), keepdim=True) * maps).sum(1, keepdim=True))
    assert cam.max() > 0
    cam = torch.nn.functional.interpolate(cam, size=(32, 32), mode="bilinear", align_corners=False)[0, 0]
    expected = (cam / cam.max()).detach().numpy()
    assert heat.shape == (32, 32) and np.allclose(heat, expected, atol=1e-6)


def test_saliency_matches_finite_differences():
    model = build_model("small-cnn", (1, 28, 28), 10, seed=6).double().eval()
    x = torch.rand(1, 1, 28, 28, dtype=torch.float64)
    heat = saliency(model, x, target=2)
    with torch.no_grad():
        raw = []
        for r, c in [(5, 5), (14, 14), (20, 9)]:
            bumped_up, bumped_down = x.clone(), x.clone()
            bumped_up[0, 0, r, c] += 1e-6
            bumped_down[0, 0, r, c] -= 1e-6
            raw.append(abs(float(model(bumped_up)[0, 2] - model(bumped_down)[0, 2])) / 2e-6)
    x.requires_grad_(True)
    grad, = torch.autograd.grad(model(x)[0, 2], x)
    scale = float(grad.abs().max())
    assert [heat[r, c] for r, c in [(5, 5), (14, 14), (20, 9)]] == pytest.approx([v / scale for v in raw], abs=1e-6)


def test_colours_and_overlay():
    assert colorize(np.array([[0.0, 1.0]])).tolist() == [[[0, 0, 80], [255, 230, 80]]]
    blended = overlay(np.zeros((2, 2), dtype=np.uint8), np.ones((2, 2)), alpha=0.5)
    assert blended.shape == (2, 2, 3) and blended[0, 0].tolist() == [128, 115, 40]
