"""The study's constants, one home for each (pure Python: every layer may import it)."""

WIDTHS = (4, 8, 16)  # channels per stage of the study's networks (``model.widths`` changes them)
MNIST_SIZES = {"train": 60000, "test": 10000}  # images in MNIST's two splits
# The original study's protocol, which the package's config defaults (conf/) repeat: what a run
# used when neither an override nor its record says otherwise (None samples: all of MNIST).
PROTOCOL = {"lr": 0.01, "protocol": "correct", "epochs": 3, "train_samples": None, "test_samples": None,
            "criterion": "test", "threshold": 0.2}
# How and where a trial runs, not what it trains: never part of a trial's identity, so a sweep
# resumed with other devices, loggers, layouts or jobs per GPU finds its trials (data.root is not
# here: another root may hold other data). trainer.benchmark (cuDNN times its float32 algorithms),
# memory_format (the tensors' layout), fast (a CUDA graph or a compiled step) and optim.foreach
# change only the kernels: the same arithmetic, summed in another order; flush_denormal zeroes
# only floats below float32's normal range, which a network near its trainable limit does not
# reach; diagnostics only reads the network.
RUNTIME_KEYS = ("gpu_jobs_per_device", "trainer.devices", "trainer.accelerator", "trainer.enable_progress_bar",
                "trainer.enable_model_summary", "trainer.enable_checkpointing", "trainer.log_every_n_steps",
                "trainer.benchmark", "memory_format", "fast", "optim.foreach", "flush_denormal", "diagnostics",
                "logger", "data.download", "data.check_md5")
