"""dendnotes.check accepts the book's own solutions and rejects typical mistakes."""

import ast
from pathlib import Path

import nbformat
import pytest
import torch

from dendnotes import check
from dendnotes.coursework import solution_code

BOOK = Path(__file__).resolve().parents[1] / "book"


def solution_namespace(notebook: str) -> dict:
    """Run the import cell and the gated solutions of a chapter; return their names."""
    nb = nbformat.read(BOOK / notebook, as_version=4)
    namespace: dict = {}
    first_code = next(c.source for c in nb.cells if c.cell_type == "code")
    exec(first_code, namespace)
    for source in solution_code(nb):
        # Solutions may go on to use the chapter's variables: run only their definitions.
        tree = ast.parse(source)
        tree.body = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.Import, ast.ImportFrom))]
        exec(compile(tree, notebook, "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def backprop_solutions():
    return solution_namespace("02_backprop.ipynb")


@pytest.fixture(scope="module")
def credit_solutions():
    return solution_namespace("01_credit_assignment.ipynb")


def test_softplus_reference_passes(backprop_solutions):
    verdict = check.softplus_deltas(backprop_solutions["softplus_deltas"])
    assert "match autograd" in str(verdict) and str(verdict).startswith("✓")


def wrong_derivative(net, cache, output_error):
    deltas = [output_error]
    for l in range(net.n_layers - 1, 0, -1):
        s = torch.sigmoid(cache.pre[l - 1])
        deltas.insert(0, (deltas[0] @ net.weights[l]) * s * (1 - s))
    return deltas


def not_implemented(*args):
    raise NotImplementedError


@pytest.mark.parametrize(
    "mistake, message",
    [
        (lambda ref: wrong_derivative, r"delta_1 \(network seed 0\) is wrong: at index"),
        (lambda ref: lambda *a: [-d for d in ref(*a)], "wrong sign"),
        (lambda ref: lambda *a: [d * 7 for d in ref(*a)], "constant factor of 7"),
        (lambda ref: lambda *a: [d.T for d in ref(*a)], "transposed"),
        (lambda ref: lambda *a: ref(*a)[::-1], "shape"),
        (lambda ref: lambda *a: ref(*a)[:-1], "list of 3 tensors"),
        (lambda ref: lambda *a: None, "list of 3 tensors, delta_1 first; got NoneType"),
        (lambda ref: not_implemented, "not implemented yet"),
        (lambda ref: "softplus", "expected a function"),
        (lambda ref: lambda *a: [d * float("nan") for d in ref(*a)], "NaN"),
    ],
)
def test_softplus_mistakes_are_explained(backprop_solutions, mistake, message):
    with pytest.raises(check.ExerciseCheckFailed, match=message):
        check.softplus_deltas(mistake(backprop_solutions["softplus_deltas"]))


def test_hidden_node_perturbation_reference_passes(credit_solutions):
    verdict = check.hidden_node_perturbation(credit_solutions["hidden_node_perturbation"])
    assert "unbiased" in str(verdict)


@pytest.mark.parametrize(
    "mistake, message",
    [
        (lambda ref: lambda *a: -ref(*a), "check the sign"),
        (lambda ref: lambda *a: ref(*a) * len(a[1]), "times the gradient's length"),
        (lambda ref: lambda *a: ref(*a).T, "transposed"),
        (lambda ref: lambda *a: torch.randn(6, 5, generator=a[4], dtype=torch.float64), "cosine is only"),
        (lambda ref: lambda *a: [ref(*a)], "return one tensor"),
        (lambda ref: not_implemented, "not implemented yet"),
    ],
)
def test_hidden_node_perturbation_mistakes_are_explained(credit_solutions, mistake, message):
    with pytest.raises(check.ExerciseCheckFailed, match=message):
        check.hidden_node_perturbation(mistake(credit_solutions["hidden_node_perturbation"]))


def test_verdict_renders():
    verdict = check.Verdict("ex-x", "fine")
    assert str(verdict) == repr(verdict) == "✓ ex-x: fine"
    assert verdict._repr_markdown_().startswith("**✓ ex-x**")
