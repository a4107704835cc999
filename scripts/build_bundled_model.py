"""Build dlplay/assets/digits-small-cnn.safetensors, the model the Upload & classify page uses before any training.

It is the CLI's default recipe on the embedded mnist5k digits, so anyone can rebuild it:
    python scripts/build_bundled_model.py
"""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "dlplay" / "assets" / "digits-small-cnn.safetensors"

if __name__ == "__main__":
    subprocess.run([sys.executable, "-m", "dlplay", "train", "--dataset", "mnist5k", "--model", "small-cnn",
                    "--epochs", "10", "--seed", "0", "--device", "cpu", "--save", str(OUT)], cwd=REPO, check=True)
    print(f"{OUT.name}: {OUT.stat().st_size / 1e6:.2f} MB")
