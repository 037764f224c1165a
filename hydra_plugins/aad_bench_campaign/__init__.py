"""Hydra plugin: the campaign launchers ``hydra/launcher: aad_slurm | aad_local``.

Found by Hydra's plugin scan of the ``hydra_plugins`` namespace, so every composition sees them, inside or
outside the ``aad-bench`` app.
"""

from hydra.core.config_store import ConfigStore

from aad_bench.campaign.launcher import AadLocalConf, AadSlurmConf, CampaignLocalLauncher, CampaignSlurmLauncher

__all__ = ["CampaignLocalLauncher", "CampaignSlurmLauncher"]

ConfigStore.instance().store(group="hydra/launcher", name="aad_slurm", node=AadSlurmConf, provider="aad_bench")
ConfigStore.instance().store(group="hydra/launcher", name="aad_local", node=AadLocalConf, provider="aad_bench")
