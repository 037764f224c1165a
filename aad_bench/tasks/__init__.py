"""Tasks the Hydra app runs (``task=<name>``): one module per task, named like the task, with a ``run(cfg)``.

The registry is discovered from this package's modules, so adding a task = adding a module.
"""

import pkgutil

from aad_bench.registry import Registry

TASKS: Registry = Registry("task", lazy={
    m.name: f"{__name__}.{m.name}:run" for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")
})
