"""FGSM against its definition, and a real flip of the bundled model's reading of a digit."""
import torch
from torch.nn import functional as F

from dlplay.adversarial import fgsm, flip_epsilon
from dlplay.classify import load_bundled_model
from dlplay.models import build_model


def test_fgsm_is_epsilon_times_the_gradient_sign_clipped():
    model = build_model("small-cnn", (1, 28, 28), 10, seed=1).eval()
    x = torch.rand(1, 1, 28, 28) * 0.8 + 0.1  # away from 0 and 1, so that ε = 0.05 is never clipped
    moved = fgsm(model, x, label=4, epsilon=0.05)
    probe = x.clone().requires_grad_(True)
    F.cross_entropy(model(probe), torch.tensor([4])).backward()
    assert torch.allclose(moved, x + 0.05 * probe.grad.sign(), atol=1e-7)
    assert fgsm(model, torch.ones(1, 1, 28, 28), 4, 0.5).max() <= 1.0


def test_a_small_push_flips_the_bundled_model(mnist5k):
    model, _ = load_bundled_model()
    image, label = mnist5k.test.images[:1].float() / 255, int(mnist5k.test.labels[0])
    assert int(model.eval()(image).argmax()) == label
    epsilon = flip_epsilon(model, image, label, [i / 100 for i in range(0, 31)])
    assert epsilon is not None and 0 < epsilon <= 0.3
    with torch.no_grad():
        assert int(model(fgsm(model, image, label, epsilon)).argmax()) != label


def test_the_perturbation_picture_is_grey_where_nothing_moved():
    from dlplay.adversarial import perturbation_picture
    batch = torch.full((1, 1, 2, 2), 0.5)
    moved = batch + torch.tensor([[[[0.1, -0.1], [0.0, 0.1]]]])
    picture = perturbation_picture(batch, moved, 0.1)
    assert picture.tolist() == [[255, 0], [128, 255]]
