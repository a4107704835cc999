"""LaTeX snippets for showing tensors with their numbers."""
import torch

MINUS = "\u2212"  # the minus sign, longer than the hyphen a float prints


def number(value: float, digits: int = 3) -> str:
    """A number rounded for display, with a proper minus sign (−, not the hyphen -); a value that rounds to zero
    shows as 0, never −0."""
    text = f"{value:.{digits}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", MINUS)


def matrix(values: torch.Tensor, digits: int = 3) -> str:
    """A vector (as a column) or a matrix as a LaTeX bmatrix."""
    rows = values.reshape(-1, 1) if values.dim() == 1 else values
    body = r" \\ ".join(" & ".join(number(float(v), digits) for v in row) for row in rows)
    return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"
