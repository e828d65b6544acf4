"""Signal-propagation diagnostics: why a deep network stops training, layer by layer.

``SignalDiagnostics`` probes one fixed training batch at initialisation (before the first
optimizer step) and after every epoch, recording for every conv block and every packed replica
the RMS of the block's output, the norm of the conv weight's gradient and the norm of the
gradient with respect to the block's output. Hooks live only for the probe, gradients come from
``torch.autograd.grad`` (``.grad`` and the optimizer are untouched) and BatchNorm buffers are
restored, so training is unchanged and costs one extra forward/backward per epoch.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import lightning as L
import torch

from ..models import ConvBlock

QUANTITIES = {"act_rms": "activation RMS", "weight_grad_norm": "||dL/dW|| (conv weight)",
              "output_grad_norm": "||dL/du|| (block output)"}


def conv_blocks(net: torch.nn.Module) -> list[ConvBlock]:
    """The network's conv blocks in order (one per conv layer)."""
    return [m for m in net.modules() if isinstance(m, ConvBlock)]


def layer_table(net: torch.nn.Module) -> list[dict]:
    """One row per conv block: its index, stage, widths and whether it has a skip."""
    rows, stage = [], 0
    for i, b in enumerate(conv_blocks(net)):
        stage += i > 0 and b.c_in != b.c_out
        rows.append({"index": i + 1, "stage": stage + 1, "c_in": b.c_in, "c_out": b.c_out, "skip": b.skip})
    return rows


def probe(net: torch.nn.Module, losses_fn, x: torch.Tensor, y: torch.Tensor) -> dict:
    """One forward/backward on (x, y); ``losses_fn(x, y)`` returns one loss per replica (S,).
    Returns per-replica lists (S x layers) of the three quantities and the losses."""
    blocks, outs = conv_blocks(net), []
    handles = [b.register_forward_hook(lambda m, i, o: outs.append(o)) for b in blocks]
    saved = [t.clone() for t in net.buffers()]  # BatchNorm running stats must not see the probe
    try:
        with torch.inference_mode(False), torch.enable_grad():
            losses = losses_fn(x, y)
            grads = torch.autograd.grad(losses.sum(), [b.conv.weight for b in blocks] + outs)
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for t, s in zip(net.buffers(), saved):
                t.copy_(s)
    S, n, L_ = net.replicas, x.shape[0], len(blocks)
    norm = torch.linalg.vector_norm  # one fused reduction per tensor
    act = torch.stack([norm(o.detach().reshape(n, S, -1), dim=(0, 2)) / math.sqrt(o[0].numel() / S * n)
                       for o in outs])
    wgrad = torch.stack([norm(g.reshape(S, -1), dim=1) for g in grads[:L_]])
    ograd = torch.stack([norm(g.reshape(n, S, -1), dim=(0, 2)) for g in grads[L_:]])
    stats = torch.stack([act, wgrad, ograd]).transpose(1, 2).double().cpu()  # (3, S, L): one sync
    out = {key: _finite(stats[i].tolist()) for i, key in enumerate(QUANTITIES)}
    out["loss"] = _finite(losses.detach().double().cpu().tolist())
    return out


def _finite(values):
    """JSON has no NaN/inf: non-finite values (a diverged replica) become null."""
    if isinstance(values, list):
        return [_finite(v) for v in values]
    return values if math.isfinite(values) else None


class SignalDiagnostics(L.Callback):
    """Writes ``diagnostics.json`` (and ``diagnostics.png`` when ``plot``) into the trainer's log dir."""

    def __init__(self, filename: str = "diagnostics.json", plot: bool = True):
        self.filename, self.plot = filename, plot
        self.batch: tuple[torch.Tensor, torch.Tensor] | None = None
        self.records: list[dict] = []
        self.header: dict = {}

    def path(self, trainer) -> Path:
        """Where diagnostics.json goes: the logger's folder, else the run folder."""
        return Path(trainer.log_dir or trainer.default_root_dir) / self.filename

    def on_train_start(self, trainer, pl_module) -> None:
        """Start a fresh record of this trial's network."""
        net = pl_module.net
        self.batch, self.records = None, []
        self.header = {"k": len(conv_blocks(net)), "replicas": net.replicas, "seeds": list(getattr(net, "seeds", [])),
                       "layers": layer_table(net)}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        """Keep the first batch and probe the network at initialisation, before its first step."""
        if self.batch is None:  # the first batch, before its optimizer step: the profile at init
            self.batch = (batch[0].detach().clone(), batch[1].detach().clone())
            self._record(trainer, pl_module, epoch=0, label="init")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """Probe the same batch again after each epoch."""
        if self.batch is not None:
            epoch = trainer.current_epoch + 1
            self._record(trainer, pl_module, epoch=epoch, label=f"epoch {epoch}")

    def on_train_end(self, trainer, pl_module) -> None:
        """Draw the profiles beside diagnostics.json (``plot``)."""
        if self.plot and self.records:
            plot_profiles(self.path(trainer), self.path(trainer).with_suffix(".png"))

    def _record(self, trainer, pl_module, epoch: int, label: str) -> None:
        started = time.perf_counter()
        x, y = self.batch
        stats = probe(pl_module.net, lambda a, b: pl_module.replica_losses(a, b)[1], x, y)
        self.records.append({"epoch": epoch, "label": label, "batches_seen": trainer.global_step,
                             "training": pl_module.net.training, "batch": x.shape[0], **stats,
                             "seconds": round(time.perf_counter() - started, 4)})
        path = self.path(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**self.header, "records": self.records}) + "\n")


def load(path_or_records) -> dict:
    """The diagnostics file as a dict, from a path, the dict itself or a bare list of records."""
    if isinstance(path_or_records, (str, Path)):
        return json.loads(Path(path_or_records).read_text())
    if isinstance(path_or_records, list):
        return {"records": path_or_records}
    return path_or_records


def plot_profiles(path_or_records, out_png=None, replica: int = 0):
    """Three panels (activation RMS, weight-gradient norm, output-gradient norm) against layer
    index on a log scale, one line per probe (init, epoch 1, ...), for one replica. Uses the Agg
    canvas directly (no pyplot, no global backend switch); returns the Figure, saved if out_png."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = load(path_or_records)
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(QUANTITIES))
    boundaries = [row["index"] - 0.5 for row in data.get("layers", []) if row["index"] > 1
                  and row["stage"] != data["layers"][row["index"] - 2]["stage"]]
    for ax, (key, title) in zip(axes, QUANTITIES.items()):
        for rec in data["records"]:
            ys = [math.nan if v is None or v <= 0 else v for v in rec[key][replica]]
            ax.plot(range(1, len(ys) + 1), ys, marker="." if len(ys) <= 60 else None, label=rec["label"])
        for b in boundaries:
            ax.axvline(b, color="0.7", lw=0.8, ls=":")
        ax.set_yscale("log")
        ax.set(title=title, xlabel="conv layer index", ylabel=title)
        ax.grid(True, which="both", alpha=0.25)
    axes[0].legend(title="probe")
    seeds = data.get("seeds") or []
    fig.suptitle(f"k={data.get('k', '?')}" + (f", seed {seeds[replica]}" if replica < len(seeds) else "")
                 + " (dotted: stage boundaries; zeros not drawn)")
    if out_png is not None:
        fig.savefig(out_png, dpi=110)
    return fig
