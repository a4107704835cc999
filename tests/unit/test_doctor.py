"""`python -m dlplay doctor`'s checks, each on this machine's own accelerator (a CPU here, a GPU on a GPU box):
every check that can run passes, and one that needs a GPU says so instead of pretending."""
import pytest
import torch

from dlplay.cli import build_parser
from dlplay.doctor import Doctor


@pytest.fixture
def doctor(tmp_path):
    checking = Doctor(tmp_path, say=lambda _line: None)
    yield checking
    checking.close()


def test_the_cli_has_a_doctor_command():
    assert build_parser().parse_args(["doctor"]).command == "doctor"


def test_device_onnx_and_out_of_memory_checks(doctor):
    device = doctor.check_device()
    assert device.status == "pass" and doctor.device.name in device.figure
    onnx = doctor.check_onnx()
    assert onnx.status == "pass", onnx.figure
    oom = doctor.check_oom()
    if doctor.device.device.type == "cpu":
        assert oom.status == "skip" and "needs a GPU" in oom.figure
    else:
        assert oom.status == "pass", oom.figure


@pytest.mark.slow  # worker processes and torchrun
def test_a_job_its_kill_and_resume_torchrun_and_the_explanations(doctor):
    doctor.open()
    outcomes = {check.__name__: check() for check in (doctor.check_job, doctor.check_resume, doctor.check_torchrun,
                                                       doctor.check_explain)}
    assert all(o.status == "pass" for o in outcomes.values()), outcomes
    if doctor.device.device.type in ("cpu", "cuda"):  # where the resume is promised exact
        assert "(exact)" in outcomes["check_resume"].figure
    if torch.cuda.device_count() < 2:
        assert "NCCL skipped: needs 2 GPUs" in outcomes["check_torchrun"].figure
