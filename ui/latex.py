"""LaTeX snippets for showing tensors with their numbers."""
import torch


def number(value: float, digits: int = 3) -> str:
    """A number rounded for display, with a proper minus sign."""
    text = f"{value:.{digits}f}"
    return text if not text.startswith("-") else "-" + text[1:]


def matrix(values: torch.Tensor, digits: int = 3) -> str:
    """A vector (as a column) or a matrix as a LaTeX bmatrix."""
    rows = values.reshape(-1, 1) if values.dim() == 1 else values
    body = r" \\ ".join(" & ".join(number(float(v), digits) for v in row) for row in rows)
    return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"
