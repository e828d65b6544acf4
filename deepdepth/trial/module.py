"""DepthClassifier: trains one DepthNet (or S packed replicas) with SGD, to the study's protocol."""
from __future__ import annotations

from collections.abc import Mapping

import hydra.utils
import lightning as L
import torch
import torch.nn.functional as F

from .config import fast_error, lr_error, memory_format_error, protocol_error
from .data import replica_labels
from .metrics import ReplicaError
from ..models import ConvBlock, DepthNet
from .step import CompilePlan, TrainStep



def sgd(lr: float = 0.01, momentum: float = 0.9) -> dict:
    """The study's optimizer as a ``_target_`` node (conf/optim/sgd.yaml): SGD with momentum.
    foreach: a handful of multi-tensor kernels per step, for zero_grad too (SGD's default zeroes
    ~4 grads per block one by one: ~1,800 extra kernels a step for resnet k=447)."""
    return {"_target_": "torch.optim.SGD", "lr": lr, "momentum": momentum, "foreach": True}


def compile_blocks(net: DepthNet, backend: str = "inductor") -> int:
    """``torch.compile`` every block in place (regional compilation): blocks of one shape share
    one compiled artifact, so a k=447 network compiles about six small graphs, not one huge
    one, and the fusion (conv bias + BatchNorm + activation + skip) is paid for once. A block
    that fails to compile runs eagerly. Returns the number of blocks compiled."""
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    blocks = [m for m in net.modules() if isinstance(m, ConvBlock)]
    for block in blocks:
        block.compile(backend=backend, dynamic=False)
    return len(blocks)


class DepthClassifier(L.LightningModule):
    """SGD (momentum 0.9) on cross-entropy; train error counted while training, test error in eval mode.

    ``optim``: the optimizer as a ``_target_`` node taking the parameters first (conf/optim/;
    default ``sgd()``), instantiated here. ``protocol="original"`` reproduces the study notebook's
    quirk: after the first evaluation the network is never put back into training mode, so
    BatchNorm uses frozen running statistics.
    ``fast``: "auto" (the default) captures the training step in a CUDA graph on a GPU; on the
    CPU it uses the channels-last memory layout where that is faster (oneDNN's fast path for
    these thin, grouped convolutions; not for one replica with BatchNorm) and compiles the
    whole step with ``torch.compile`` when the trial is long enough to pay for the compile
    (``compile_rule``; decided after a few timed eager steps). True asks for the graph wherever
    CUDA is available; False is the plain eager step in the default layout; "compile" forces
    the whole-step compile on the CPU, and on a GPU compiles every block with ``torch.compile``
    (``compile_backend``) before the graph is captured (experimental: compile time counts
    against the trial). ``memory_format``: "auto" is ``fast``'s choice above (the standard
    layout on a GPU); "channels_last" or "contiguous" sets the layout whatever ``fast`` is (on a
    GPU cuDNN picks other kernels for each: ``benchmarks/packed_probe.py`` times both). Every
    setting trains the same function, to float rounding.

    Each step is reported to Lightning as one optimizer step, so ``global_step``, ``max_steps``,
    checkpointing and the loggers' step axes count steps as for any Lightning module.
    """

    def __init__(self, net: DepthNet, optim: Mapping | None = None, protocol: str = "correct",
                 fast: bool | str = "auto", compile_backend: str = "inductor", memory_format: str = "auto"):
        super().__init__()
        optim = dict(optim if optim is not None else sgd())
        problem = next(filter(None, (lr_error(optim["lr"]) if "lr" in optim else None, protocol_error(protocol),
                                     fast_error(fast), memory_format_error(memory_format))), None)
        if problem:  # the config checks' own lines, for a module built from Python
            raise ValueError(problem)
        self.save_hyperparameters({"k": net.k, "seeds": list(net.seeds), "optim": optim, "protocol": protocol,
                                   "fast": fast, "compile_backend": compile_backend, "memory_format": memory_format})
        self.net, self.optim, self.protocol, self.fast, self.compile_backend = net, optim, protocol, fast, compile_backend
        self.memory_format = memory_format
        self.automatic_optimization = False
        self.train_error = ReplicaError(net.replicas)
        self.test_error = ReplicaError(net.replicas)
        self.history: dict[str, list[list[float]]] = {"train_err": [], "test_err": []}
        self.step_runner: TrainStep | None = None
        self.cuda_graph: dict | None = None  # the step runner's stats, kept when it is released
        self.compiled: dict | None = None    # the CPU compile's stats (None: not considered)
        self.trained_on: str | None = None   # the device training ran on (Lightning moves the module back after fit)
        self.channels_last = False
        self.has_norm = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's logits: (N, 10) for one replica, (N, S, 10) for S."""
        return self.net(x)

    def configure_optimizers(self):
        """The ``optim`` node instantiated on the network's parameters."""
        return hydra.utils.instantiate(self.optim, _partial_=True)(self.net.parameters())

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def replica_losses(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, S, 10) and one mean cross-entropy per replica (S,); y is (N,) or (N, S)
        (``deepdepth.trial.data``'s batch layout)."""
        logits = self.net(self._layout(x)).view(x.shape[0], self.net.replicas, -1)
        target = replica_labels(y, self.net.replicas)
        losses = F.cross_entropy(logits.permute(0, 2, 1), target, reduction="none").mean(0)
        return logits, losses

    def on_fit_start(self) -> None:
        """Choose the memory layout for the device the trainer put the module on."""
        self.trained_on = str(self.device)
        # On the CPU, oneDNN's channels-last convolutions are 10-40% faster for these thin and
        # grouped layers, but PyTorch's channels-last BatchNorm is ~10x slower on 4-16 channels:
        # so channels-last unless a single replica has BatchNorm (benchmarks/RESULTS.md).
        # Parameters are converted in place, so the optimizer keeps them.
        self.has_norm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.net.modules())
        if self.memory_format == "auto":
            self.channels_last = (self.fast is not False and self.device.type == "cpu"
                                  and (self.net.replicas > 1 or not self.has_norm))
        else:
            self.channels_last = self.memory_format == "channels_last"
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)

    def on_train_start(self) -> None:
        """Build the step runner (eager, CUDA graph or compiled, as ``fast`` says)."""
        use_graph = self.fast in (True, "compile") or (self.fast == "auto" and self.device.type == "cuda")
        if self.fast == "compile" and self.device.type == "cuda":
            compile_blocks(self.net, self.compile_backend)
        optimizer = self.optimizers().optimizer
        self.step_runner = TrainStep(self.replica_losses, optimizer, use_graph, self.compile_plan(optimizer))

    def compile_plan(self, optimizer: torch.optim.Optimizer) -> CompilePlan | None:
        """The CPU's whole-step compile: considered for fast=auto, forced for fast=compile."""
        if self.device.type != "cpu" or self.fast not in ("auto", "compile"):
            return None
        defaults = {k: v for k, v in optimizer.defaults.items() if isinstance(v, (bool, int, float, str, type(None)))}
        signature = (self.net.structure(), repr(self.net.features), repr(self.net.classifier), [tuple(p.shape) for p in self.net.parameters()], self.net.depths,
                     type(optimizer).__name__, sorted(defaults.items()),
                     self.channels_last, torch.get_num_threads())
        return CompilePlan(force=self.fast == "compile", blocks=self.net.k, norm=self.has_norm,
                           packed=self.net.replicas > 1, signature=repr(signature),
                           steps_left=self._steps_left, state=self.net)

    def _steps_left(self, training: bool) -> int:
        """Steps the trial still runs in that mode; under protocol=original BatchNorm trains
        only in the first epoch."""
        trainer = self.trainer
        left = min(float(trainer.estimated_stepping_batches), 1e9) - self.global_step
        if self.protocol == "original" and training and self.has_norm:
            left = min(left, trainer.num_training_batches - self.global_step)
        return max(int(left), 0)

    def on_train_end(self) -> None:
        """Release the step runner (and its CUDA graphs' memory)."""
        self.release_step()

    def release_step(self) -> None:
        """Keep the step's stats and drop the runner, whose CUDA graphs hold a memory pool (the
        caller then collects it: ``gc.collect()``, ``torch.cuda.empty_cache()``)."""
        if self.step_runner is not None:
            self.cuda_graph = self.step_runner.stats()
            self.compiled = self.step_runner.compile_stats()
            self.step_runner.release()
            self.step_runner = None

    def on_train_epoch_start(self) -> None:
        """Restart the running train error; under protocol=original, BatchNorm stays frozen after epoch 1."""
        self.train_error.reset()  # the running train error of this epoch
        if self.protocol == "original" and self.current_epoch > 0:
            self.net.eval()  # the notebook's missing model.train() after its first evaluation

    def training_step(self, batch, batch_idx: int) -> dict:
        """One SGD step on every replica at once; the loss returned is the replicas' sum."""
        x, y = batch
        optimizer = self.optimizers()
        # What LightningOptimizer.step() reports around its step; called here because a
        # replayed CUDA graph runs the optimizer's kernels without any Python.
        optimizer._on_before_step()
        logits, losses = self.step_runner(x, y, self.net.training)
        optimizer._on_after_step()
        self.train_error.update(logits, y)
        every = self.trainer.log_every_n_steps  # self.log costs ~1 ms: only on steps the loggers write
        if every and self.global_step % every == 0:
            self.log("train_loss", losses.mean(), on_step=True, on_epoch=False)
        return {"loss": losses.sum(), "replica_loss": losses}

    def on_validation_epoch_start(self) -> None:
        """Restart the test error count."""
        self.test_error.reset()

    def validation_step(self, batch, batch_idx: int) -> None:
        """Count one test batch's mistakes per replica (eval mode, no gradients)."""
        x, y = batch
        logits = self.net(self._layout(x)).view(x.shape[0], self.net.replicas, -1)
        self.test_error.update(logits, y)

    def on_validation_epoch_end(self) -> None:
        """Record this epoch's train and test error per replica (history and loggers)."""
        if self.trainer.sanity_checking:
            return
        train_err = self.train_error.compute().reshape(-1)  # torchmetrics squeezes one replica to a scalar
        test_err = self.test_error.compute().reshape(-1)
        self.history["train_err"].append(train_err.tolist())
        self.history["test_err"].append(test_err.tolist())
        for s in range(self.net.replicas):
            suffix = "" if self.net.replicas == 1 else f"/{s}"
            self.log(f"train_err{suffix}", train_err[s], on_epoch=True)
            self.log(f"test_err{suffix}", test_err[s], on_epoch=True)

    def on_test_epoch_start(self) -> None:
        """``trainer.test``: restart the test error count."""
        self.test_error.reset()

    def test_step(self, batch, batch_idx: int) -> None:
        """``trainer.test``: count one test batch's mistakes per replica."""
        self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        """``trainer.test``: log the test error per replica (not added to the trial's history)."""
        test_err = self.test_error.compute().reshape(-1)
        for s in range(self.net.replicas):
            self.log("test_err" if self.net.replicas == 1 else f"test_err/{s}", test_err[s])
