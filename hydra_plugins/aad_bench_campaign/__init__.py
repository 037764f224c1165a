"""Hydra plugin: the campaign launchers ``hydra/launcher: aad_slurm | aad_local``.

Found by Hydra's plugin scan of the ``hydra_plugins`` namespace, so every composition sees them, inside or
outside the ``aad-bench`` app.
"""

from hydra.core.config_store import ConfigStore

from aad_bench.campaign import launcher as _launcher

__all__ = ["CampaignLocalLauncher", "CampaignSlurmLauncher"]


# Hydra accepts a plugin only if its class is defined in the hydra_plugins package (and keys it by that module)
class CampaignSlurmLauncher(_launcher.CampaignSlurmLauncher):
    """``hydra/launcher: aad_slurm`` (see aad_bench.campaign.launcher)."""


class CampaignLocalLauncher(_launcher.CampaignLocalLauncher):
    """``hydra/launcher: aad_local`` (see aad_bench.campaign.launcher)."""


_cs = ConfigStore.instance()
_cs.store(group="hydra/launcher", name="aad_slurm", node=_launcher.AadSlurmConf, provider="aad_bench")
_cs.store(group="hydra/launcher", name="aad_local", node=_launcher.AadLocalConf, provider="aad_bench")
