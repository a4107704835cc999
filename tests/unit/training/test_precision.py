"""Mixed precision: detected from the CPU's flags, switchable, and bfloat16 training lands where float32 does."""
import torch

from dlplay.data import ImageSet
from dlplay.device import DeviceInfo, cpu_flags, cpu_has_native_bf16, pick_device
from dlplay.evaluate import evaluate
from dlplay.models import build_model
from dlplay.training.trainer import Trainer, build_optimizer

SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile\n"
EPYC_AVX2 = "processor\t: 0\nflags\t\t: fpu sse avx avx2 fma\n"
GRAVITON3 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_native_bf16_is_read_from_the_cpu_flags_not_assumed():
    assert cpu_has_native_bf16(cpu_flags(SAPPHIRE_RAPIDS)) and cpu_has_native_bf16(cpu_flags(GRAVITON3))
    assert not cpu_has_native_bf16(cpu_flags(EPYC_AVX2))
    assert not cpu_has_native_bf16(cpu_flags(""))
    assert "avx2" in cpu_flags(EPYC_AVX2) and "bf16" in cpu_flags(GRAVITON3)


def test_turning_mixed_precision_off_means_float32_on_any_device():
    assert pick_device("auto", mixed_precision=False).autocast is None
    assert pick_device("cpu", mixed_precision=False).precision == "float32"
    cpu = pick_device("cpu")
    assert cpu.autocast is (torch.bfloat16 if cpu_has_native_bf16() else None)


def train_once(device: DeviceInfo, mnist5k, seed: int = 0):
    """Two epochs of the small CNN on every fourth training digit (1,000, all classes); returns (last epoch's
    training loss, test accuracy)."""
    train = ImageSet(mnist5k.train.images[::4], mnist5k.train.labels[::4])
    model = build_model("small-cnn", mnist5k.input_shape, 10, *mnist5k.channel_stats(), seed=seed)
    trainer = Trainer(model, build_optimizer("adamw", model.parameters(), 3e-3, 5e-4), train, device,
                      batch_size=64, epochs=2, schedule="onecycle", seed=seed)
    history = trainer.fit()
    assert trainer.scaler.is_enabled() is (device.autocast is torch.float16)  # only float16 scales its gradients
    return history.epochs[-1].train_loss, evaluate(model, mnist5k.test, device).accuracy


def test_bfloat16_training_lands_within_a_stated_tolerance_of_float32(mnist5k):
    """bfloat16 autocast (emulated where the CPU lacks it: slower, same numbers) against float32, same seed:
    test accuracy within 2 points, final training loss within 25% (bfloat16 keeps 8 bits of mantissa)."""
    cpu = torch.device("cpu")
    fp32_loss, fp32_accuracy = train_once(DeviceInfo(cpu, "CPU", None, True), mnist5k)
    bf16_loss, bf16_accuracy = train_once(DeviceInfo(cpu, "CPU", torch.bfloat16, True), mnist5k)
    assert fp32_accuracy > 0.9  # both really learned
    assert abs(bf16_accuracy - fp32_accuracy) <= 0.02
    assert abs(bf16_loss - fp32_loss) <= 0.25 * fp32_loss
    assert bf16_loss != fp32_loss  # bfloat16 really computed something different
