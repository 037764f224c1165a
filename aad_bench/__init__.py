"""aad_bench: experiments, evaluation and ablations for one-step autoregressive image-to-video distillation."""

__version__ = "0.1.0"
