"""robosteer: Robotic Steering (Mitra et al., 2025) as Dagster software-defined assets.

Domain subpackages (``droid``, ``vla``, ``steering``, ``training``, ``sim``,
``evaluation``) never import dagster; the Dagster layer lives in ``defs``.
"""

__version__ = "0.1.0"
