"""Tasks the Hydra app runs (``task=<name>``), registered by name."""

from aad_bench.registry import Registry

TASKS: Registry = Registry("task", lazy={
    "teacher": "aad_bench.tasks.teacher_task:run",
    "toy_data": "aad_bench.tasks.teacher_task:run_toy_data",
    "distill": "aad_bench.tasks.distill_task:run",
    "demo": "aad_bench.tasks.demo:run",
    "sample": "aad_bench.tasks.sample_task:run",
})
