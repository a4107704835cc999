"""The Chinese catalog: every message translated, with the same placeholders, in the glossary's terms; it holds exactly
the messages the code asks for; and what the core says comes out in Chinese through the catalog's templates."""
import io
import re
import string
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from babel.messages.extract import extract, extract_from_dir
from babel.messages.pofile import read_po
from PIL import Image

from dlplay.builder import LAYER_KINDS, SIZE_LABELS, LayerSpec, build_stack
from dlplay.checkpoint import ModelFileError, load_model_bytes
from dlplay.classify import SAMPLE_CREDITS, SAMPLE_NAMES, load_bundled_model, preprocess
from dlplay.data import DATASETS, ImageSet, data_problem
from dlplay.device import DeviceInfo
from dlplay.images import ImageRejected, decode_image
from dlplay.lessons.activations import INITS
from dlplay.lessons.convolution import KERNELS, parse_kernel, shape_table
from dlplay.lessons.neuron import loss_against_probability
from dlplay.lessons.optimizers import SURFACES
from dlplay.lessons.playground import DATASETS as POINTS
from dlplay.lessons.playground import REGULARIZERS, NetworkConfig, read_points_csv
from dlplay.models import MODELS, build_model
from dlplay.training.jobs import REMEDIES, RunStatus
from dlplay.training.jobs.ray_backend import refusal, unreachable
from dlplay.training.schedules import SCHEDULES
from dlplay.userdata import ZipLimits, ZipRejected, import_zip
from helpers import class_folders_zip
from ui.i18n import translate

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "locale" / "zh" / "LC_MESSAGES" / "dlplay.po"
CJK = re.compile(r"[\u4e00-\u9fff]")


def messages() -> dict[str, str]:
    with CATALOG.open("rb") as file:
        return {m.id: m.string for m in read_po(file) if m.id}


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def test_every_message_has_a_translation_with_the_same_placeholders():
    found = messages()
    assert len(found) > 500
    for english, chinese in found.items():
        assert chinese.strip(), f"no translation for {english!r}"
        assert placeholders(english) == placeholders(chinese), english
        assert english.count("**") == chinese.count("**"), english  # bold stays bold


def test_the_glossarys_terms_are_used():
    glossary = tomllib.loads((REPO / "locale" / "glossary.toml").read_text())
    wrong = []
    for english, chinese in messages().items():
        # Placeholders' names, `code` and dotted names (dlplay.models, torch.optim) are not words of the message.
        words = re.sub(r"\{[^}]*\}|`[^`]*`|\w+(\.\w+)+", " ", english)
        for term, translated in glossary.items():
            if re.search(rf"\b{re.escape(term)}(s|es)?\b", words, re.IGNORECASE) and translated not in chinese:
                wrong.append(f"{english!r} uses {term!r}: expected {translated!r}")
    assert not wrong, "\n".join(wrong)


def test_the_catalog_holds_exactly_the_messages_the_code_asks_for():
    asked = set()
    for folder in (REPO / "app_pages", REPO / "ui"):
        asked |= {message for _, _, message, _, _ in extract_from_dir(folder) if isinstance(message, str)}
    with (REPO / "router.py").open("rb") as file:
        asked |= {message for _, message, _, _ in extract("python", file) if isinstance(message, str)}
    for path in [REPO / "router.py", *(REPO / "app_pages").glob("*.py"), *(REPO / "ui").glob("*.py")]:
        # Babel does not look inside f-strings: a _("...") there would never reach the catalog.
        for call in re.finditer(r"""\bN?_\(\s*((?:(["'])(?:(?!\2)[^\\]|\\.)*\2\s*)+)\)""", path.read_text()):
            asked.add("".join(eval(part) for part, _ in re.findall(r"""((["'])(?:(?!\2)[^\\]|\\.)*\2)""",
                                                                 call.group(1))))  # noqa: S307 (our own literals)
    found = set(messages())
    assert not asked - found, f"asked for but not in the catalog: {sorted(asked - found)[:10]}"
    assert not found - asked, f"in the catalog but asked for nowhere: {sorted(found - asked)[:10]}"


def test_a_communication_round_and_an_epoch_have_different_names():
    """FedAvg's round (clients train, the server averages) is 回合; 轮 is an epoch, and a round holds 1-3 of them."""
    for english, chinese in messages().items():
        words = re.sub(r"\{[^}]*\}", " ", english)
        if re.search(r"\brounds?\b", words, re.IGNORECASE):
            assert "回合" in chinese, english
            assert ("轮" in chinese) == bool(re.search(r"\bepochs?\b", words)), english


def chinese(text: str) -> str:
    """`text` from the core in Chinese, asserting that it was translated."""
    translated = translate(text, "zh")
    assert translated != text and CJK.search(translated), f"not translated: {text!r}"
    return translated


def test_the_registries_names_and_descriptions_are_translated():
    precisions = [DeviceInfo(torch.device("cpu"), "CPU", dtype, True).precision for dtype in (torch.float16,
                                                                                              torch.bfloat16)]
    texts = [*SCHEDULES.values(), *POINTS, *REGULARIZERS[:1], *SURFACES, *KERNELS, *SAMPLE_CREDITS.values(),
             *SAMPLE_NAMES.values(), *precisions, *INITS[:1], *loss_against_probability(3)[1],
             *(d.description for d in DATASETS.values()), *(m.description for m in MODELS.values()),
             *REMEDIES[1:], *(s.value for s in RunStatus), *LAYER_KINDS, *SIZE_LABELS.values(),
             *(LayerSpec(kind, 32).describe() for kind in LAYER_KINDS)]
    for text in texts:
        if text in ("XOR", "Sobel x", "Sobel y", "dropout") or text.startswith("dropout "):
            assert translate(text, "zh")  # names that are the same in both languages
        else:
            chinese(text)


def raised(call, *args, error=ValueError) -> str:
    with pytest.raises(error) as caught:
        call(*args)
    return str(caught.value)


def test_the_cores_error_messages_come_out_in_chinese_with_their_values():
    csv = raised(read_points_csv, b"x1,x2\n1,2\n", 0.5, 0)
    assert chinese(csv) == "CSV 需要 x1、x2 以及 label（或 target）列；缺少：label or target"
    assert "12,000" in chinese(raised(read_points_csv, b"x1,x2,label\n" + b"1,2,0\n" * 12_000, 0.5, 0))
    assert "20,000" in chinese(raised(parse_kernel, "1 " * 10_000))
    for text in (b"x1,x2,label\n1,2,0\n", b"x1,x2,label\n" + b"1,a,0\n" * 5, b"x1,x2,label\n" + b"1,2,0\n" * 5,
                 b"\xff\xfe\x00", b"x1,x2,label\n" + b"1,2,0.5\n" * 5):
        chinese(raised(read_points_csv, text, 0.5, 0))
    chinese(raised(NetworkConfig(features=()).check))
    for kernel in ("1 2\n3", "", "a b\nc d", "1 2 3 4 5 6 7 8\n" * 8):
        chinese(raised(parse_kernel, kernel))
    for data in (b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 40):
        chinese(raised(decode_image, data, error=ImageRejected))
    tiny = io.BytesIO()
    Image.new("L", (1, 1)).save(tiny, "PNG")
    assert "1×1" in chinese(raised(decode_image, tiny.getvalue(), error=ImageRejected))
    bilevel = io.BytesIO()
    Image.new("1", (3000, 3000)).save(bilevel, "PNG")
    costly = chinese(raised(lambda: decode_image(bilevel.getvalue(), max_decoded_mb=10), error=ImageRejected))
    assert costly == "解码这张 3000×3000 的图片（1）需要 18 MB 内存；上限是 10 MB。"
    chinese(raised(load_model_bytes, b"version https://git-lfs.github.com/spec/v1\n", "m.safetensors",
                   error=ModelFileError))
    chinese(raised(load_model_bytes, b"garbage", "m.safetensors", error=ModelFileError))
    for stack in ((LayerSpec("dense", 8), LayerSpec("conv", 4)), (LayerSpec("dropout", 120),),
                  (LayerSpec("pool"),) * 6):
        chinese(raised(build_stack, stack, (1, 28, 28), 10))
    empty = ImageSet(torch.zeros(0, 1, 8, 8, dtype=torch.uint8), torch.zeros(0, dtype=torch.long))
    chinese(data_problem(("a", "b"), empty, empty))
    one = ImageSet(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]))
    chinese(data_problem(("a", "b"), one, one))
    for sentence in (refusal("10.0.0.5:6379", token_mode=False), refusal("10.0.0.5:6379", token_mode=True),
                     refusal("10.0.0.5:6379", token_mode=True, token_found=False), unreachable("10.0.0.5:6379")):
        assert "10.0.0.5:6379" in chinese(sentence)
    assert translate("Training is not available: {reason}.", "zh").format(
        reason=chinese(refusal("10.0.0.5:6379", token_mode=False))) == (
        "无法训练：10.0.0.5:6379 上的 Ray 集群要求令牌：请设置 RAY_AUTH_MODE=token，并把 RAY_AUTH_TOKEN 设为它的令牌"
        "（或把 RAY_AUTH_TOKEN_PATH 设为存有令牌的文件）。")


def test_a_bad_zip_and_its_skipped_files_are_said_in_chinese(tmp_path):
    chinese(raised(import_zip, io.BytesIO(b"not a zip"), error=ZipRejected))
    one_class = io.BytesIO()
    with zipfile.ZipFile(one_class, "w") as archive:
        picture = io.BytesIO()
        Image.new("RGB", (8, 8), "red").save(picture, "PNG")
        archive.writestr("cats/a.png", picture.getvalue())
        archive.writestr("notes.txt", "hello")
    assert "1" in chinese(raised(import_zip, one_class, error=ZipRejected))
    clash = io.BytesIO()
    with zipfile.ZipFile(clash, "w") as archive:
        archive.writestr("cats/x.png", b"1")
        archive.writestr("cats/x.png/y.png", b"2")
    assert "'cats/x.png/y.png'" in chinese(raised(import_zip, clash, error=ZipRejected))
    slow = chinese(raised(lambda: import_zip(io.BytesIO(class_folders_zip({"a": 2, "b": 2})),
                                             limits=ZipLimits(max_seconds=0)), error=ZipRejected))
    assert slow.startswith("读取压缩包里的图片超过了 0 秒（已读 4 张中的 0 张）")
    big = chinese(raised(lambda: import_zip(io.BytesIO(class_folders_zip({"a": 2, "b": 2})), image_size=150,
                                            limits=ZipLimits(max_dataset_mb=0.1)), error=ZipRejected))
    assert big.startswith("压缩包里的 4 张图片缩放到 150×150 后要占 0.3 MB；上限是 0.1 MB。")


def test_the_preprocessing_steps_are_said_in_chinese():
    _, card = load_bundled_model()
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 48, 3), dtype=np.uint8))
    drawing = Image.new("RGB", (100, 100), "white")
    drawing.paste((0, 0, 0), (40, 20, 60, 80))
    for picture in (photo, drawing, Image.new("L", (50, 50), 255)):
        for caption, _ in preprocess(picture, card).steps:
            chinese(caption)


@pytest.mark.parametrize("name, shape", [("article-cifar10", (3, 32, 32)), ("article-150", (3, 150, 150))])
def test_the_shape_tables_arithmetic_is_said_in_chinese(name, shape):
    for row in shape_table(build_model(name, shape, 10), shape):
        said = translate(row.formula, "zh")
        assert "param" not in said and ("参数" in said or row.layer == "Flatten"), said
    assert chinese("⌊(32 + 2·0 − 1·(3−1) − 1)/1⌋ + 1 = 30; params 3·3·3·32 + 32 = 896") == (
        "⌊(32 + 2·0 − 1·(3−1) − 1)/1⌋ + 1 = 30；参数 3·3·3·32 + 32 = 896")
    assert chinese("shape unchanged; no parameters") == "形状不变；没有参数"


def test_run_messages_compose():
    finished = chinese("Trained 3 epoch(s) in 4.2 s; test accuracy 97.5%.")
    assert finished == "训练了 3 轮，用时 4.2 秒；测试准确率 97.5%。"
    stopped = chinese("Stopped; the model keeps the weights it had reached. test accuracy 91.0%.")
    assert stopped.startswith("已停止") and stopped.endswith("测试准确率 91.0%。")
    chinese("Loss diverged at step 12: lower the learning rate (the model keeps the last good weights).")
    assert chinese("Holding after step 57; press Resume to go on.") == "停在第 57 步之后；点“继续”接着训练。"
    chinese("The training process stopped unexpectedly; resume from epoch 3 (its checkpoint was saved after epoch 2).")
    assert translate("a message dlplay never wrote", "zh") == "a message dlplay never wrote"  # English as it is
