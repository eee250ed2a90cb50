"""The multilayer perceptron, as a plain torch module and as a stack of K models.

:func:`build_mlp` gives the tutorial's network made configurable, as an
``nn.Sequential`` that anyone can load a checkpoint into. :class:`StackedMLP`
holds K such networks as weight tensors of shape ``[K, ...]`` and runs forward
and backward passes for all K at once with batched matrix products and
hand-written gradients (no autograd), which is what makes training many small
models fast: a model this small is dominated by per-operation overhead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu")
LEAKY_SLOPE = 0.01
"""Negative slope of leaky_relu, torch's default."""


def output_size(n_classes: int) -> int:
    """One logit for two classes (BCEWithLogitsLoss), one per class otherwise (CrossEntropyLoss)."""
    return 1 if n_classes == 2 else n_classes


def build_mlp(
    n_inputs: int, hidden: Sequence[int], n_classes: int, activation: str = "relu", dropout: float = 0.0
) -> nn.Sequential:
    """The network as a torch module: Linear, activation[, Dropout] per hidden layer, then Linear.

    Its ``state_dict`` keys are those the checkpoints store.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, not {activation!r}")
    layers: list[nn.Module] = []
    width = n_inputs
    for size in hidden:
        layers.append(nn.Linear(width, size))
        layers.append(
            {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE)}[
                activation
            ]()
        )
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, output_size(n_classes)))
    return nn.Sequential(*layers)


def loss_function(n_classes: int) -> nn.Module:
    """BCEWithLogitsLoss for two classes, CrossEntropyLoss for more."""
    return nn.BCEWithLogitsLoss() if n_classes == 2 else nn.CrossEntropyLoss()


def linear_keys(hidden: Sequence[int], dropout: float) -> list[str]:
    """``state_dict`` prefixes of the Linear layers of :func:`build_mlp`, in order."""
    per_block = 3 if dropout > 0 else 2
    return [f"{i * per_block}" for i in range(len(hidden))] + [f"{len(hidden) * per_block}"]


def init_weights(rng: np.random.Generator, sizes: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Weights ``[in, out]`` and biases ``[out]`` drawn as torch's nn.Linear does.

    Both from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), here from the model's own numpy
    generator, so a model's start does not depend on what it is trained beside.
    """
    out = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        bound = 1.0 / math.sqrt(fan_in)
        weight = rng.uniform(-bound, bound, size=(fan_in, fan_out))
        bias = rng.uniform(-bound, bound, size=(fan_out,))
        out.append((weight, bias))
    return out


def _act(z: torch.Tensor, activation: str) -> torch.Tensor:
    if activation == "relu":
        return torch.relu(z)
    if activation == "tanh":
        return torch.tanh(z)
    if activation == "sigmoid":
        return torch.sigmoid(z)
    return torch.nn.functional.leaky_relu(z, LEAKY_SLOPE)


IN_PLACE = {"relu": torch.relu_, "tanh": torch.tanh_, "sigmoid": torch.sigmoid_}
"""Activations applied in place: their gradient is a function of the output alone (relu: ``z > 0`` iff ``a > 0``)."""


def _act_backward(
    g: torch.Tensor, z: torch.Tensor, a: torch.Tensor, activation: str, in_place: bool = False
) -> torch.Tensor:
    """Gradient w.r.t. the pre-activation ``z``, given the gradient ``g`` w.r.t. ``a = act(z)``.

    For the activations of :data:`IN_PLACE`, ``z`` may be the output itself. ``in_place`` lets ReLU's
    gradient overwrite ``g`` (same numbers, no new ``[K, B, h]`` tensor).
    """
    if activation == "relu":
        if in_place:
            return torch.ops.aten.threshold_backward.grad_input(g, z, 0, grad_input=g)
        return torch.ops.aten.threshold_backward(g, z, 0)
    if activation == "tanh":
        return torch.ops.aten.tanh_backward(g, a)
    if activation == "sigmoid":
        return torch.ops.aten.sigmoid_backward(g, a)
    return torch.ops.aten.leaky_relu_backward(g, z, LEAKY_SLOPE, False)


@dataclass
class StackedMLP:
    """K multilayer perceptrons of one architecture, weights stacked on dim 0.

    ``weights[l]`` is ``[K, in, out]`` and ``biases[l]`` is ``[K, 1, out]``.
    """

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    activation: str
    dropout: float
    n_classes: int

    @property
    def params(self) -> list[torch.Tensor]:
        """Weights and biases interleaved, the order the optimiser walks."""
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    def forward(self, x: torch.Tensor, drop_masks: Sequence[torch.Tensor] | None = None) -> tuple[torch.Tensor, list]:
        """Logits ``[K, B, out]`` for inputs ``[K, B, in]``, and what backward needs.

        ``drop_masks`` (training with dropout only) holds one 0/1 mask per hidden
        layer, already divided by the keep probability.
        """
        cache = []
        h = x
        for layer, (w, b) in enumerate(zip(self.weights[:-1], self.biases[:-1], strict=True)):
            tracked = torch.is_grad_enabled() and (h.requires_grad or w.requires_grad or b.requires_grad)
            if self.activation == "relu" and not tracked:
                # One product, then bias and ReLU in one fused in-place pass: the same numbers as baddbmm + relu_
                # (the product is rounded, then the bias added), one pass fewer over [K, B, h]. Not under
                # autograd, which has no derivative of the fused operation.
                a = z = torch.ops.aten._add_relu_(torch.bmm(h, w), b)
                out = a * drop_masks[layer] if drop_masks is not None else a
                cache.append((h, z, a))
                h = out
                continue
            z = torch.baddbmm(b, h, w)
            if self.activation in IN_PLACE:
                # The backward of these needs only the output (relu: its sign), so z can be overwritten.
                a = z = IN_PLACE[self.activation](z)
            else:
                a = _act(z, self.activation)
            out = a * drop_masks[layer] if drop_masks is not None else a
            cache.append((h, z, a))
            h = out
        w_out = self.weights[-1]
        if w_out.shape[-1] == 1:
            # One logit: a broadcast multiply-and-sum beats a batched mat-vec on CPU.
            logits = (h * w_out.transpose(1, 2)).sum(-1, keepdim=True).add_(self.biases[-1])
        else:
            logits = torch.baddbmm(self.biases[-1], h, w_out)
        cache.append((h, None, None))
        return logits, cache

    def backward(
        self,
        grad_logits: torch.Tensor,
        cache: list,
        drop_masks: Sequence[torch.Tensor] | None = None,
        out: Sequence[torch.Tensor] | None = None,
    ) -> list[torch.Tensor]:
        """Gradients of the loss, in :attr:`params` order, given d loss / d logits.

        ``out`` (optional) holds one preallocated tensor per parameter, in
        :attr:`params` order, that the gradients are written into: a wide first
        layer then reuses its buffer every step instead of allocating one.
        The gradient with respect to the network's input is never formed.
        """
        grads: list[torch.Tensor] = []
        n_layers = len(self.weights)
        slots = list(out) if out is not None else [None] * (2 * n_layers)

        def bias_grad(g: torch.Tensor, slot: torch.Tensor | None) -> torch.Tensor:
            return g.sum(dim=1, keepdim=True) if slot is None else torch.sum(g, dim=1, keepdim=True, out=slot)

        def weight_grad(h: torch.Tensor, g: torch.Tensor, slot: torch.Tensor | None) -> torch.Tensor:
            return torch.bmm(h.transpose(1, 2), g) if slot is None else torch.bmm(h.transpose(1, 2), g, out=slot)

        g = grad_logits
        h_last = cache[-1][0]
        single = g.shape[-1] == 1
        grads.append(bias_grad(g, slots[-1]))
        if single:
            # d loss / d w_out = h^T g as a row vector times a matrix ([k, 1, B] @ [k, B, h]): one pass over h
            # and no temporary, 1.5x faster than a broadcast product and a sum over rows (the logits are the
            # other way round: the broadcast product and sum beat a batched mat-vec there).
            k, width = h_last.shape[0], h_last.shape[-1]
            slot = slots[-2]
            if slot is None:
                grads.append(torch.bmm(g.transpose(1, 2), h_last).view(k, width, 1))
            else:
                torch.bmm(g.transpose(1, 2), h_last, out=slot.view(k, 1, width))
                grads.append(slot)
        else:
            grads.append(weight_grad(h_last, g, slots[-2]))
        for layer in range(n_layers - 2, -1, -1):
            h_in, z, a = cache[layer]
            w_next = self.weights[layer + 1]
            last_hidden = single and layer == n_layers - 2  # one logit: a broadcast product beats a mat-vec
            g = g * w_next.transpose(1, 2) if last_hidden else torch.bmm(g, w_next.transpose(1, 2))
            if drop_masks is not None:
                g = g * drop_masks[layer]
            # g is a fresh temporary here, so the activation's gradient may overwrite it.
            g = _act_backward(g, z, a, self.activation, in_place=not g.requires_grad)
            grads.append(bias_grad(g, slots[2 * layer + 1]))
            grads.append(weight_grad(h_in, g, slots[2 * layer]))
        grads.reverse()
        return grads


def loss_and_grad(
    logits: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, n_valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-model mean loss over its valid rows, and the gradient w.r.t. the logits.

    ``logits`` ``[K, B, out]``; ``y`` ``[K, B]`` integer classes (or float 0/1 targets for one logit); ``valid``
    ``[K, B]`` 0/1 (float); ``n_valid`` ``[K]`` (at least 1). One logit means
    BCEWithLogitsLoss, several mean CrossEntropyLoss, each averaged over a
    model's own rows, exactly as torch's ``reduction='mean'`` does per model.
    Returns the per-row losses ``[K, B]`` (zero where invalid) and the gradient.
    """
    scale = (valid / n_valid[:, None]).unsqueeze(-1)
    if logits.shape[-1] == 1:
        o = logits.squeeze(-1)
        t = y if y.is_floating_point() else y.to(o.dtype)
        rows = torch.nn.functional.binary_cross_entropy_with_logits(o, t, weight=valid, reduction="none")
        return rows, logit_grad(logits, t, scale)
    log_p = torch.log_softmax(logits, dim=-1)
    rows = -log_p.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    onehot = torch.nn.functional.one_hot(y, logits.shape[-1]).to(logits.dtype)
    grad = (log_p.exp() - onehot) * scale
    return rows * valid, grad


def logit_grad(logits: torch.Tensor, t: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """d mean BCEWithLogitsLoss / d logit of one-logit models: ``(sigmoid(o) - t) * scale``, ``[K, B, 1]``.

    ``logits`` ``[K, B, 1]``, float 0/1 targets ``t`` ``[K, B]``, ``scale`` ``[K, B, 1]`` each row's weight in
    its model's mean (``valid / n_valid``). The gradient :func:`loss_and_grad` returns, bit for bit.
    """
    return torch.sigmoid(logits.squeeze(-1)).sub_(t).unsqueeze(-1).mul_(scale)


def stack_state_dicts(
    models: Sequence[nn.Sequential], hidden: Sequence[int], dropout: float
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Weights and biases of several :func:`build_mlp` modules in stacked layout."""
    keys = linear_keys(hidden, dropout)
    weights = [torch.stack([m.state_dict()[f"{k}.weight"].T for m in models]) for k in keys]
    biases = [torch.stack([m.state_dict()[f"{k}.bias"][None, :] for m in models]) for k in keys]
    return weights, biases


def state_dict_of(
    stack: StackedMLP, index: int, hidden: Sequence[int], n_inputs: int | None = None, dropout: float | None = None
) -> dict[str, torch.Tensor]:
    """One model of the stack as a :func:`build_mlp` ``state_dict`` (float32, CPU).

    ``n_inputs`` cuts the first layer to the model's own inputs when it was
    trained zero-padded beside models with more genes; ``dropout`` is the
    model's own (its module layout has dropout layers only when it is above 0).
    """
    out = {}
    keys = linear_keys(hidden, stack.dropout if dropout is None else dropout)
    for layer, (key, w, b) in enumerate(zip(keys, stack.weights, stack.biases, strict=True)):
        weight = w[index] if layer or n_inputs is None else w[index, :n_inputs]
        out[f"{key}.weight"] = weight.T.detach().to("cpu", torch.float32).contiguous()
        out[f"{key}.bias"] = b[index, 0].detach().to("cpu", torch.float32).contiguous()
    return out
